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
  ScanEntry,
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
 * contract, so they pass unencrypted); its transactions offer `appendAudit` and `putMany`
 * exactly when the backend's do, `putMany` encrypting every value as `put` does.
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
 * `audit` and `poolStats` when the backend has them.
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
