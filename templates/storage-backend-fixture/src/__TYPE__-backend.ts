import {
  type AuditingBackend,
  type HealthStatus,
  type ScanEntry,
  type Transaction,
  type TransactionOptions,
  StorageError,
  StorageErrorCode,
  validateKey,
  validateListPage,
  validatePrefix,
  validateValue,
  withRetries,
} from "@egide/storage-core";
import { __Type__AuditStore } from "./__TYPE__-audit-store.js";
import { resolve__Type__Options, type __Type__Options, type Resolved__Type__Options } from "./__TYPE__-options.js";
import { __Type__Store } from "./__TYPE__-store.js";
import { __Type__Transaction } from "./__TYPE__-transaction.js";
import { __CONST___TYPE } from "./__TYPE__-type.js";

/**
 * The __TYPE__ storage backend, finished: an in-memory database (one per `open`, gone with the
 * process) behind Egide's `StorageBackend` contract, with its audit log beside the data. It is
 * the template's `__Type__Backend` with every member written, kept small rather than fast:
 * writers (plain writes and transactions, read-only ones included) take one lock in turn, and
 * reads outside transactions read the committed state, which a commit changes in one step.
 * Calling the backend's own methods from inside a transaction callback waits for that
 * transaction, as on a single-writer database: use the `tx` object.
 */
export class __Type__Backend implements AuditingBackend {
  readonly type = __CONST___TYPE;
  /** The audit store that lives beside the data. */
  readonly audit: __Type__AuditStore;
  /** The options this backend was opened with, defaults applied. */
  readonly options: Resolved__Type__Options;
  /** The in-memory database. */
  readonly store = new __Type__Store();
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(options: Resolved__Type__Options) {
    this.options = options;
    this.audit = new __Type__AuditStore(this);
  }

  /** Opens a new, empty in-memory database. */
  static async open(options: __Type__Options = {}): Promise<__Type__Backend> {
    return new __Type__Backend(resolve__Type__Options(options));
  }

  async get(key: string): Promise<Buffer | null> {
    validateKey(key, this.type);
    this.assertOpen();
    const value = this.store.value(key);
    // A copy: a caller that zeroes what it read must not change the store.
    return value === undefined ? null : Buffer.from(value);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    validateKey(key, this.type);
    validateValue(value, this.options.maxValueBytes, this.type);
    this.assertOpen();
    // Copied before the first await: the caller may reuse its buffer at once.
    await this.#write(key, Buffer.from(value));
  }

  async delete(key: string): Promise<void> {
    validateKey(key, this.type);
    this.assertOpen();
    await this.#write(key, null);
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key, this.type);
    this.assertOpen();
    return this.store.has(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    validateListPage(prefix, after, limit, this.type);
    this.assertOpen();
    return this.transaction((tx) => tx.listPage(prefix, after, limit), { readOnly: true });
  }

  async *scan(prefix: string): AsyncGenerator<ScanEntry> {
    validatePrefix(prefix, this.type);
    this.assertOpen();
    // The snapshot: the committed entries, taken in one synchronous step. Stored values are
    // never mutated (a commit replaces them), so holding them is enough.
    for (const [key, value] of this.store.entries(prefix)) {
      this.assertOpen();
      yield { key, value: Buffer.from(value) };
    }
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.assertOpen();
    const readOnly = options.readOnly === true;
    return withRetries(
      async () => {
        const tx = await __Type__Transaction.begin(this, readOnly);
        let result: T;
        try {
          result = await fn(tx);
        } catch (error) {
          tx.settle();
          await tx.rollback();
          throw error;
        }
        tx.settle();
        await tx.commit();
        return result;
      },
      // One writer at a time never conflicts; kept for the shape of the template.
      { shouldRetry: (error) => StorageError.isInstance(error, StorageErrorCode.CONFLICT) },
    );
  }

  async health(): Promise<HealthStatus> {
    const started = performance.now();
    if (this.#closed) return { status: "unhealthy", latencyMs: performance.now() - started, error: "closed" };
    return { status: "healthy", latencyMs: performance.now() - started };
  }

  close(): Promise<void> {
    this.#closed = true;
    // Nothing to release: the data goes with the object.
    this.#closing ??= Promise.resolve();
    return this.#closing;
  }

  /** Throws `CLOSED` once `close()` was called. */
  assertOpen(): void {
    if (this.#closed) throw new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: this.type });
  }

  /** A single put (`value`) or delete (`null`), committed under the writer lock. */
  async #write(key: string, value: Buffer | null): Promise<void> {
    const release = await this.store.lock();
    try {
      this.assertOpen();
      this.store.apply(new Map([[key, value]]));
    } finally {
      release();
    }
  }
}
