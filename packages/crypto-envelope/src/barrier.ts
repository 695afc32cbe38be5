import {
  DEFAULT_MAX_VALUE_BYTES,
  InvalidKeyError,
  StorageError,
  StorageErrorCode,
  isAuditingTransaction,
  TransactionGuard,
  validateKey,
  validateListPage,
  validatePrefix,
  validateValue,
  wrapStorage,
  wrapTransaction,
} from "@egide/storage-core";
import type {
  AuditEntry,
  AuditRecord,
  AuditingTransaction,
  ChangeFeedListener,
  ChangeFeedSubscription,
  ScanEntry,
  StorageChange,
  StorageBackend,
  StorageOverrides,
  Transaction,
  TransactionOptions,
  TransactionOverrides,
  WrappedStorage,
} from "@egide/storage-core";
import { VALUE_RECORD_OVERHEAD } from "./record-format.js";
import { RESERVED_PREFIX, isReservedKey } from "./reserved-keys.js";
import { barrierKeyAccess } from "./barrier-key-access.js";
import type { BarrierKeyAccess } from "./barrier-key-access.js";
import type { SealManager } from "./seal-manager.js";

/** Options of {@link barrier}. */
export interface BarrierOptions {
  /**
   * The largest plaintext value accepted. Default: the storage default (1 MiB) minus the
   * record overhead, so the encrypted record still fits the underlying backend's default.
   */
  maxValueBytes?: number;
}

/**
 * The encrypting barrier: a {@link StorageBackend} over `backend` that encrypts every value on
 * the way in and decrypts it on the way out, with the keys of `seal` (a seal manager opened on
 * the same backend). Keys stay readable, so listing works unchanged; the barrier's own records
 * under `.egide/` are hidden and out of reach. While sealed, every data operation fails with
 * `SEALED`; `health()` still reports on the storage beneath.
 *
 * Built with `wrapStorage`: the barrier offers exactly the optional capabilities of `backend`
 * and invents none. `audit` and `poolStats()` are forwarded (audit rows hold no secrets by
 * contract, so they pass unencrypted); `getMany()` decrypts every value as `get` does, in one
 * read of the backend; `subscribeChanges()` passes the backend's change feed on without the
 * barrier's own keys (a change of nothing else is not delivered). Its transactions offer
 * `appendAudit`, `putMany` and `getMany` exactly when the backend's do, `putMany` encrypting
 * and `getMany` decrypting every value.
 */
export function barrier<B extends StorageBackend>(backend: B, seal: SealManager, options: BarrierOptions = {}): WrappedStorage<B> {
  // The keys are reached through the manager's non-public key access, never its public API.
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES - VALUE_RECORD_OVERHEAD;
  return wrapStorage(backend, new EncryptingBarrier(backend, barrierKeyAccess(seal), maxValueBytes));
}

/**
 * What the barrier changes in the backend beneath, for `wrapStorage`: values are encrypted and
 * decrypted, reserved keys are refused and hidden, and data operations check the seal. `health`
 * and `close` are forwarded unchanged (the storage beneath still reports while sealed), as are
 * `audit` and `poolStats` when the backend has them. `getMany` and `subscribeChanges` are used
 * by `wrapStorage` only when the backend has them.
 */
class EncryptingBarrier implements StorageOverrides {
  readonly #type: string;
  readonly #inner: StorageBackend;
  readonly #seal: BarrierKeyAccess;
  readonly #maxValueBytes: number;
  readonly #read: (key: string) => Promise<Buffer | null>;
  /** The barrier's view of each open transaction of the backend, closed when its callback settles. */
  readonly #views = new WeakMap<Transaction, BarrierTransaction>();

  constructor(inner: StorageBackend, seal: BarrierKeyAccess, maxValueBytes: number) {
    this.#type = inner.type;
    this.#inner = inner;
    this.#seal = seal;
    this.#maxValueBytes = maxValueBytes;
    this.#read = (key) => inner.get(key);
  }

  // Point operations build one promise synchronously (no async function frame) and turn
  // synchronous validation failures into rejections, as every backend does.

  get(key: string): Promise<Buffer | null> {
    try {
      this.#checkKey(key);
      this.#seal.assertUnsealed();
      return this.#inner.get(key).then((record) => (record === null ? null : this.#seal.decryptValue(key, record, this.#read)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `get` for several keys in one read of the backend: every key is checked as `get` checks it
   * (a reserved key is refused before anything is read), then each record is decrypted.
   */
  getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    try {
      for (const key of keys) this.#checkKey(key);
      this.#seal.assertUnsealed();
      // Present: wrapStorage uses this override only when the backend has getMany.
      const getMany = this.#inner.getMany as NonNullable<StorageBackend["getMany"]>;
      return getMany.call(this.#inner, keys).then((records) => decryptRecords(keys, records, this.#seal, this.#read));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The backend's change feed as the barrier's storage: the barrier's reserved keys are taken
   * out of every change, and a change that named only reserved keys is not delivered.
   *
   * Why filter although the feed carries keys only (forwarding would leak no value): the
   * barrier hides `.egide/` from list and scan and refuses it as a key, and its feed should
   * describe the same storage. The keyring is written outside every barrier write (each
   * encryption reservation, each rotation), so forwarded as is, a put through the barrier
   * could be followed by a second change nobody above made, and a subscriber that reads back
   * what changed (`getValues(barrier, change.keys)`) would fail with `INVALID_KEY`. Positions
   * and `committedAt` are the backend's, so they still increase strictly and still measure feed
   * lag; a dropped change only leaves its position unused. `keys: null` ("anything may have
   * changed") and `live` pass as they are.
   *
   * Not refused while sealed: the feed carries no values, a subscription is typically made
   * before unsealing, and the keys it names are plaintext in the storage beneath anyway.
   */
  subscribeChanges(listener: ChangeFeedListener): ChangeFeedSubscription {
    // Present: wrapStorage uses this override only when the backend has subscribeChanges.
    const subscribe = this.#inner.subscribeChanges as NonNullable<StorageBackend["subscribeChanges"]>;
    return subscribe.call(this.#inner, {
      change: (change) => {
        const visible = withoutReservedKeys(change);
        if (visible !== undefined) listener.change(visible);
      },
      live: (live) => listener.live(live),
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    try {
      this.#checkKey(key);
      validateValue(value, this.#maxValueBytes, this.#type);
      return this.#encryptAndPut(key, value);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  delete(key: string): Promise<void> {
    try {
      this.#checkKey(key);
      this.#seal.assertUnsealed();
      return this.#inner.delete(key);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  exists(key: string): Promise<boolean> {
    try {
      this.#checkKey(key);
      this.#seal.assertUnsealed();
      return this.#inner.exists(key);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  list(prefix: string): Promise<string[]> {
    try {
      this.#checkPrefix(prefix);
      this.#seal.assertUnsealed();
      return this.#inner.list(prefix).then((entries) => withoutReserved(prefix, entries));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    try {
      validateListPage(prefix, after, limit, this.#type);
      this.#checkPrefix(prefix);
      this.#seal.assertUnsealed();
      return listPageWithoutReserved(this.#inner, prefix, after, limit);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async *scan(prefix: string): AsyncIterable<ScanEntry> {
    this.#checkPrefix(prefix);
    this.#seal.assertUnsealed();
    const mayHoldReserved = RESERVED_PREFIX.startsWith(prefix);
    for await (const entry of this.#inner.scan(prefix)) {
      if (mayHoldReserved && isReservedKey(entry.key)) continue;
      const value = this.#seal.decryptValue(entry.key, entry.value, this.#read);
      yield { key: entry.key, value: value instanceof Promise ? await value : value };
    }
  }

  /**
   * Checks the seal and makes the encryption reservation, then runs `fn` (which `wrapStorage`
   * hands the barrier's view of the backend's transaction, made by {@link wrapTransaction})
   * and closes that view once it settles.
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#seal.assertUnsealed();
    // Reservations are made here, outside the transaction: the keyring update is a
    // transaction of its own, which SQLite's single writer could not start from inside one.
    if (options.readOnly !== true) await this.#seal.prepareWrites();
    return this.#inner.transaction(async (inner) => {
      try {
        return await fn(inner);
      } finally {
        this.#views.get(inner)?.close();
        this.#views.delete(inner);
      }
    }, options);
  }

  wrapTransaction(inner: Transaction, options: TransactionOptions): TransactionOverrides {
    const view = new BarrierTransaction(
      inner,
      this.#seal,
      new TransactionGuard(this.#type, options.readOnly === true, this.#maxValueBytes),
    );
    this.#views.set(inner, view);
    return view;
  }

  // Many concurrent puts can wait on one reservation, which may be smaller than their
  // number: each checks again after waiting and encrypts only in the tick that finds an
  // encryption left, so writes outside transactions never overdraw.
  #encryptAndPut(key: string, value: Uint8Array): Promise<void> {
    const preparing = this.#seal.prepareWrites();
    if (preparing) return preparing.then(() => this.#encryptAndPut(key, value));
    return this.#inner.put(key, this.#seal.encryptValue(key, value));
  }

  #checkKey(key: string): void {
    validateKey(key, this.#type);
    if (isReservedKey(key)) throw reservedKeyError(key, this.#type);
  }

  #checkPrefix(prefix: string): void {
    validatePrefix(prefix, this.#type);
    if (isReservedKey(prefix)) throw reservedKeyError(prefix, this.#type);
  }
}

/**
 * The barrier's view of `inner`, a transaction of the underlying backend (type `backend`),
 * encrypting with the keys behind `seal`, for code that already holds a raw transaction: the
 * seal manager's initialisation, which writes the first records with keys nothing else knows
 * yet. Call `close()` once the transaction's callback settles. Not exported by the package.
 *
 * It offers `putMany` exactly when `inner` does. It always offers `appendAudit`, as
 * `InitializeOptions.within` promises: over a transaction without one, it fails with
 * `INTERNAL` (the barrier itself, by contrast, offers `appendAudit` only when the backend does).
 */
export function barrierTransaction(
  inner: Transaction,
  seal: BarrierKeyAccess,
  backend: string,
  maxValueBytes: number = DEFAULT_MAX_VALUE_BYTES - VALUE_RECORD_OVERHEAD,
): AuditingTransaction & { close(): void } {
  const view = new BarrierTransaction(inner, seal, new TransactionGuard(backend, false, maxValueBytes));
  const wrapped = wrapTransaction(inner, view) as Transaction & Partial<AuditingTransaction> & { close(): void };
  if (!wrapped.appendAudit) wrapped.appendAudit = (entry) => view.appendAudit(entry);
  wrapped.close = () => view.close();
  return wrapped as AuditingTransaction & { close(): void };
}

/**
 * What the barrier changes in a transaction of the underlying backend, for `wrapTransaction`
 * (which uses `putMany` and `appendAudit` only when the backend's transaction has them). Audit
 * rows pass through unencrypted: they are the backend's audit log, which holds no secrets by
 * contract.
 */
class BarrierTransaction implements TransactionOverrides {
  readonly #inner: Transaction;
  readonly #seal: BarrierKeyAccess;
  readonly #guard: TransactionGuard;
  readonly #read: (key: string) => Promise<Buffer | null>;

  constructor(inner: Transaction, seal: BarrierKeyAccess, guard: TransactionGuard) {
    this.#inner = inner;
    this.#seal = seal;
    this.#guard = guard;
    // A keyring reload inside a transaction reads through the transaction itself.
    this.#read = (key) => inner.get(key);
  }

  close(): void {
    this.#guard.close();
  }

  async get(key: string): Promise<Buffer | null> {
    this.#guard.read(key);
    checkNotReserved(key, this.#guard.backend);
    const record = await this.#inner.get(key);
    return record === null ? null : this.#seal.decryptValue(key, record, this.#read);
  }

  /**
   * `get` for several keys in one read of the backend's transaction (which sees its own
   * writes): every key is checked as {@link get} checks it before anything is read.
   */
  async getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    for (const key of keys) {
      this.#guard.read(key);
      checkNotReserved(key, this.#guard.backend);
    }
    this.#seal.assertUnsealed();
    const getMany = this.#inner.getMany;
    if (!getMany) {
      throw new StorageError(StorageErrorCode.INTERNAL, "the backend beneath the barrier cannot read many values in a transaction", {
        backend: this.#guard.backend,
      });
    }
    return decryptRecords(keys, await getMany.call(this.#inner, keys), this.#seal, this.#read);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#guard.put(key, value);
    checkNotReserved(key, this.#guard.backend);
    await this.#inner.put(key, this.#seal.encryptValue(key, value));
  }

  /**
   * Checks every entry as {@link put} does (nothing is encrypted or written when one fails),
   * encrypts each value, then makes one bulk put in the backend's transaction.
   */
  async putMany(entries: readonly ScanEntry[]): Promise<void> {
    this.#guard.write();
    for (const entry of entries) {
      this.#guard.put(entry.key, entry.value);
      checkNotReserved(entry.key, this.#guard.backend);
    }
    this.#seal.assertUnsealed();
    const encrypted = entries.map((entry): ScanEntry => ({ key: entry.key, value: this.#seal.encryptValue(entry.key, entry.value) }));
    const putMany = this.#inner.putMany;
    if (!putMany) {
      throw new StorageError(StorageErrorCode.INTERNAL, "the backend beneath the barrier cannot put many values in a transaction", {
        backend: this.#guard.backend,
      });
    }
    await putMany.call(this.#inner, encrypted);
  }

  async delete(key: string): Promise<void> {
    this.#guard.delete(key);
    checkNotReserved(key, this.#guard.backend);
    this.#seal.assertUnsealed();
    await this.#inner.delete(key);
  }

  async exists(key: string): Promise<boolean> {
    this.#guard.read(key);
    checkNotReserved(key, this.#guard.backend);
    this.#seal.assertUnsealed();
    return this.#inner.exists(key);
  }

  async list(prefix: string): Promise<string[]> {
    this.#guard.list(prefix, "", 0);
    checkNotReserved(prefix, this.#guard.backend);
    this.#seal.assertUnsealed();
    return withoutReserved(prefix, await this.#inner.list(prefix));
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#guard.list(prefix, after, limit);
    checkNotReserved(prefix, this.#guard.backend);
    this.#seal.assertUnsealed();
    return listPageWithoutReserved(this.#inner, prefix, after, limit);
  }

  async appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    this.#guard.write();
    if (!isAuditingTransaction(this.#inner)) {
      throw new StorageError(StorageErrorCode.INTERNAL, "the backend beneath the barrier cannot write audit rows in a transaction", {
        backend: this.#guard.backend,
      });
    }
    return this.#inner.appendAudit(entry);
  }
}

/**
 * The plaintexts of `records` (what one `getMany` of `keys` returned), each decrypted exactly as
 * `get` decrypts one. Synchronous while every record is under a key version this process knows;
 * when some need a keyring reload, they are awaited together (they share one reload). When one
 * fails, the call fails, and the plaintexts already decrypted are wiped: the caller never holds
 * part of an answer.
 */
function decryptRecords(
  keys: readonly string[],
  records: readonly (Buffer | null)[],
  seal: BarrierKeyAccess,
  read: (key: string) => Promise<Buffer | null>,
): (Buffer | null)[] | Promise<(Buffer | null)[]> {
  // The storage key is the records' associated data, so a misaligned answer could only fail as
  // CORRUPT; a length mismatch is the backend's bug, named as such.
  if (records.length !== keys.length) {
    throw new StorageError(
      StorageErrorCode.INTERNAL,
      `the backend beneath the barrier returned ${records.length} values for ${keys.length} keys`,
    );
  }
  const values: (Buffer | Promise<Buffer> | null)[] = [];
  let pending = false;
  try {
    for (let i = 0; i < records.length; i++) {
      const record = records[i] as Buffer | null;
      const value = record === null ? null : seal.decryptValue(keys[i] as string, record, read);
      if (value instanceof Promise) pending = true;
      values.push(value);
    }
  } catch (error) {
    wipeValues(values);
    throw error;
  }
  if (!pending) return values as (Buffer | null)[];
  return Promise.allSettled(values).then((settled) => {
    const failed = settled.find((result) => result.status === "rejected");
    if (failed === undefined) return settled.map((result) => (result as PromiseFulfilledResult<Buffer | null>).value);
    for (const result of settled) if (result.status === "fulfilled") result.value?.fill(0);
    throw failed.reason;
  });
}

const wipe = (plaintext: Buffer): void => {
  plaintext.fill(0);
};
// A record still decrypting when another one failed: the call has failed already, so its own
// failure has no one to go to (and must not surface as an unhandled rejection).
const ignore = (): void => {};

/** Wipes decrypted values the caller will never see, including those still being decrypted. */
function wipeValues(values: readonly (Buffer | Promise<Buffer> | null)[]): void {
  for (const value of values) {
    if (value instanceof Promise) value.then(wipe, ignore);
    else value?.fill(0);
  }
}

/**
 * `change` without the barrier's reserved keys: the same object when it names none, `undefined`
 * when it names nothing else.
 */
function withoutReservedKeys(change: StorageChange): StorageChange | undefined {
  const keys = change.keys;
  if (keys === null || !keys.some(isReservedKey)) return change;
  const visible = keys.filter((key) => !isReservedKey(key));
  return visible.length === 0 ? undefined : { position: change.position, keys: visible, committedAt: change.committedAt };
}

function reservedKeyError(key: string, backend: string): InvalidKeyError {
  return new InvalidKeyError(key, `keys under ${RESERVED_PREFIX} are reserved for the encryption barrier`, { backend });
}

function checkNotReserved(key: string, backend: string): void {
  if (isReservedKey(key)) throw reservedKeyError(key, backend);
}

/** `entries` of `list(prefix)` without the reserved folder (only `list("")`-like prefixes can hold it). */
function withoutReserved(prefix: string, entries: string[]): string[] {
  if (!RESERVED_PREFIX.startsWith(prefix)) return entries;
  return entries.filter((entry) => !isReservedKey(prefix + entry));
}

/**
 * A page of the listing without the reserved folder. When the folder was inside a full page,
 * the page is topped up from the entry after the last one read, so pages keep their size.
 */
async function listPageWithoutReserved(
  source: Pick<Transaction, "listPage">,
  prefix: string,
  after: string,
  limit: number,
): Promise<string[]> {
  const page = await source.listPage(prefix, after, limit);
  if (!RESERVED_PREFIX.startsWith(prefix)) return page;
  const visible = withoutReserved(prefix, page);
  if (limit <= 0 || visible.length === page.length || page.length < limit) return visible;
  const last = page[page.length - 1] as string;
  const more = await source.listPage(prefix, last, limit - visible.length);
  return visible.concat(withoutReserved(prefix, more));
}
