import {
  type AuditEntry,
  type AuditRecord,
  type AuditingTransaction,
  type KeySeek,
  NETWORK_SEEK_BATCH,
  TransactionGuard,
  listChildren,
  normalizeAuditEntry,
  runSkipScanAsync,
} from "@egide/storage-core";
import type { __Type__Backend } from "./__TYPE__-backend.js";
import { notImplemented } from "./not-implemented.js";

/**
 * One open transaction of the __TYPE__ backend (`Transaction` in `@egide/storage-core`, with
 * `appendAudit`: an `AuditingTransaction`). Its reads see its own writes; nothing outside sees
 * them before `commit()`; a read-only one refuses writes with `READ_ONLY`; and once the callback
 * settled, every member fails with `CLOSED`. `TransactionGuard` does those checks, and the
 * argument checks, at the top of every member: keep it there.
 */
export class __Type__Transaction implements AuditingTransaction {
  readonly #guard: TransactionGuard;

  private constructor(
    readonly backend: __Type__Backend,
    readonly readOnly: boolean,
  ) {
    this.#guard = new TransactionGuard(backend.type, readOnly, backend.options.maxValueBytes);
  }

  /**
   * Starts a transaction: serializable when it writes (no lost update, no write skew; a
   * conflict is a retryable `CONFLICT`), a stable snapshot when it is read-only.
   */
  static async begin(backend: __Type__Backend, readOnly: boolean): Promise<__Type__Transaction> {
    backend.assertOpen();
    // TODO: begin the transaction in the database (a connection of its own, a snapshot, a lock)
    // and keep its handle on the instance; `commit` and `rollback` release it.
    return new __Type__Transaction(backend, readOnly);
  }

  /** Ends the transaction's usability (`CLOSED` from now on); the backend calls it when the callback settles. */
  settle(): void {
    this.#guard.close();
  }

  /** The value at `key` as this transaction sees it (its own writes included), or `null`. */
  async get(key: string): Promise<Buffer | null> {
    this.#guard.read(key);
    // TODO: read `key` inside the transaction; return a fresh Buffer.
    throw notImplemented("__Type__Transaction.get()");
  }

  /** Writes `key` inside the transaction (copy `value` now: the caller may reuse it). */
  async put(key: string, value: Uint8Array): Promise<void> {
    this.#guard.put(key, value);
    // TODO: write `key` inside the transaction.
    throw notImplemented("__Type__Transaction.put()");
  }

  /** Deletes `key` inside the transaction; an absent key is not an error. */
  async delete(key: string): Promise<void> {
    this.#guard.delete(key);
    // TODO: delete `key` inside the transaction.
    throw notImplemented("__Type__Transaction.delete()");
  }

  /** Whether `key` holds a value, as this transaction sees it. */
  async exists(key: string): Promise<boolean> {
    this.#guard.read(key);
    // TODO: check `key` inside the transaction.
    throw notImplemented("__Type__Transaction.exists()");
  }

  /** The direct children of `prefix` as this transaction sees them (see `StorageBackend.list`). */
  list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  /**
   * A page of {@link __Type__Transaction.list}. Plumbing: storage-core's skip-scan turns your
   * `seek` into Vault's listing rules (children, folders once with `/`, the `after` cursor, the
   * limit), one probe per child, never a walk over the whole subtree.
   */
  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#guard.list(prefix, after, limit);
    return runSkipScanAsync(listChildren(prefix, after, limit, NETWORK_SEEK_BATCH), (probe) => this.#seek(probe));
  }

  /**
   * One index probe of the skip-scan: up to `probe.limit` keys in UTF-8 byte order, `>=
   * probe.from` (`>` when `probe.inclusive` is false) and `< probe.before` (no upper bound when it
   * is null), as this transaction sees them (its puts added, its deletes left out). A range read,
   * never pattern matching.
   */
  async #seek(probe: KeySeek): Promise<string[]> {
    // TODO: read the keys of the range.
    throw notImplemented("__Type__Transaction.seek() (the key range read behind list and listPage)", probe);
  }

  /**
   * Writes an audit row that commits or rolls back with this transaction (the server writes a
   * change and its audit row atomically). `READ_ONLY` in a read-only transaction. Returns the
   * stored row with its id (increasing, below 2^53).
   */
  async appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    this.#guard.write();
    return this.#insertAudit(normalizeAuditEntry(entry, this.backend.type));
  }

  /** Inserts a checked audit row inside the transaction; returns it with its id. */
  async #insertAudit(row: Required<AuditEntry>): Promise<AuditRecord> {
    // TODO: insert `row` inside the transaction and return `{ id, ...row }`.
    throw notImplemented("__Type__Transaction.appendAudit()", row);
  }

  /**
   * Makes the transaction's writes (and audit rows) visible, all at once. A serialization
   * failure is a `CONFLICT` (retryable: the backend runs the callback again); an unknown outcome
   * (the connection died after the commit was sent) is `UNAVAILABLE` with `retryable: false`.
   * A backend closed while the callback ran must not commit (`CLOSED`).
   */
  async commit(): Promise<void> {
    // TODO: commit, and release what `begin` took.
    throw notImplemented("__Type__Transaction.commit()");
  }

  /**
   * Undoes every write of the transaction and releases what `begin` took. It must not throw: the
   * caller gets the callback's own error, so on failure discard the connection instead.
   */
  async rollback(): Promise<void> {
    // TODO: roll back, and release what `begin` took. (Until `begin` takes something, there is
    // nothing to undo: this template writes nothing, so it does not throw here.)
  }
}
