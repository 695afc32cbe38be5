import {
  type AuditEntry,
  type AuditRecord,
  type AuditingTransaction,
  type KeySeek,
  IN_PROCESS_SEEK_BATCH,
  TransactionGuard,
  compareKeys,
  listChildren,
  normalizeAuditEntry,
  runSkipScanAsync,
} from "@egide/storage-core";
import type { __Type__Backend } from "./__TYPE__-backend.js";

/**
 * One open transaction of the in-memory __TYPE__ backend. It holds the writer lock from `begin`
 * to `commit` or `rollback`, so the committed state cannot change under it: its reads are a
 * stable snapshot and no update is lost. Writes (and audit rows) wait in an overlay that the
 * commit applies in one synchronous step.
 */
export class __Type__Transaction implements AuditingTransaction {
  readonly #guard: TransactionGuard;
  readonly #release: () => void;
  /** The transaction's writes, by key; `null` is a delete. */
  readonly #writes = new Map<string, Buffer | null>();
  readonly #auditRecords: AuditRecord[] = [];

  private constructor(
    readonly backend: __Type__Backend,
    readonly readOnly: boolean,
    release: () => void,
  ) {
    this.#guard = new TransactionGuard(backend.type, readOnly, backend.options.maxValueBytes);
    this.#release = release;
  }

  /** Starts a transaction: waits for the writer lock (read-only transactions too: a stable snapshot for free). */
  static async begin(backend: __Type__Backend, readOnly: boolean): Promise<__Type__Transaction> {
    backend.assertOpen();
    const release = await backend.store.lock();
    try {
      // Closed while waiting for the lock.
      backend.assertOpen();
    } catch (error) {
      release();
      throw error;
    }
    return new __Type__Transaction(backend, readOnly, release);
  }

  /** Ends the transaction's usability; the backend calls it when the callback settles. */
  settle(): void {
    this.#guard.close();
  }

  async get(key: string): Promise<Buffer | null> {
    this.#guard.read(key);
    const value = this.#visible(key);
    return value === undefined ? null : Buffer.from(value);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#guard.put(key, value);
    this.#writes.set(key, Buffer.from(value));
  }

  async delete(key: string): Promise<void> {
    this.#guard.delete(key);
    this.#writes.set(key, null);
  }

  async exists(key: string): Promise<boolean> {
    this.#guard.read(key);
    return this.#visible(key) !== undefined;
  }

  list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#guard.list(prefix, after, limit);
    // In process, a probe costs microseconds: the in-process batch sizes.
    return runSkipScanAsync(listChildren(prefix, after, limit, IN_PROCESS_SEEK_BATCH), async (probe) => this.#seek(probe));
  }

  /** The keys of the probe's range as this transaction sees them: the committed keys it did not write, merged with the keys it put. */
  #seek(probe: KeySeek): string[] {
    const inRange = (key: string) => {
      const from = compareKeys(key, probe.from);
      return (probe.inclusive ? from >= 0 : from > 0) && (probe.before === null || compareKeys(key, probe.before) < 0);
    };
    const added: string[] = [];
    for (const [key, value] of this.#writes) if (value !== null && inRange(key)) added.push(key);
    added.sort(compareKeys);
    const committed = this.backend.store.keysIn(probe);
    const keys: string[] = [];
    let next = this.#nextUnwritten(committed);
    let at = 0;
    while (keys.length < probe.limit) {
      const own = added[at];
      if (next === undefined && own === undefined) break;
      if (own === undefined || (next !== undefined && compareKeys(next, own) < 0)) {
        keys.push(next as string);
        next = this.#nextUnwritten(committed);
      } else {
        keys.push(own);
        at += 1;
      }
    }
    return keys;
  }

  /** The next committed key this transaction did not write (a written key is deleted, or among its own puts). */
  #nextUnwritten(committed: Iterator<string>): string | undefined {
    for (let step = committed.next(); !step.done; step = committed.next()) {
      if (!this.#writes.has(step.value)) return step.value;
    }
    return undefined;
  }

  async appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    this.#guard.write();
    const record = this.backend.store.auditRecord(normalizeAuditEntry(entry, this.backend.type), this.backend.type);
    this.#auditRecords.push(record);
    return record;
  }

  async commit(): Promise<void> {
    try {
      // A backend closed while the callback ran does not commit.
      this.backend.assertOpen();
      this.backend.store.apply(this.#writes);
      this.backend.store.insertAudit(this.#auditRecords);
    } finally {
      this.#release();
    }
  }

  async rollback(): Promise<void> {
    // Nothing was applied: dropping the overlay is the rollback.
    this.#release();
  }

  /** The value of `key` as this transaction sees it; undefined when absent. */
  #visible(key: string): Buffer | undefined {
    const written = this.#writes.get(key);
    if (written !== undefined) return written ?? undefined;
    return this.backend.store.value(key);
  }
}
