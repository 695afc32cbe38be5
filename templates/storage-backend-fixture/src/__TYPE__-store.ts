import {
  type AuditEntry,
  type AuditQuery,
  type AuditRecord,
  type KeySeek,
  StorageError,
  StorageErrorCode,
  compareKeys,
} from "@egide/storage-core";

/** An audit row as kept: the time as milliseconds and the metadata as JSON, as a database column would hold them. */
interface StoredAuditRow extends Omit<AuditRecord, "timestamp" | "metadata"> {
  timestamp: number;
  metadata: string | null;
}

/**
 * The committed state of one in-memory __TYPE__ database: the values, their keys in UTF-8 byte
 * order (a sorted array standing in for a database's key index), the audit log, and the writer
 * lock. Every change happens in one synchronous step (`apply`), so a reader never sees half of a
 * commit; writers take the lock one at a time, so no update is lost.
 */
export class __Type__Store {
  readonly #values = new Map<string, Buffer>();
  readonly #keys: string[] = [];
  readonly #auditRows: StoredAuditRow[] = [];
  #nextAuditId = 1;
  // The tail of the writer queue: each holder of the lock waits for the one before.
  #writerTail: Promise<void> = Promise.resolve();

  /** The stored value at `key` (never mutated: callers copy it before handing it out). */
  value(key: string): Buffer | undefined {
    return this.#values.get(key);
  }

  /** Whether `key` holds a value. */
  has(key: string): boolean {
    return this.#values.has(key);
  }

  /** The keys of `probe`'s range in order, without its limit: `>= from` (`>` unless inclusive) and `< before`. */
  *keysIn(probe: Pick<KeySeek, "from" | "inclusive" | "before">): Generator<string> {
    let at = this.#lowerBound(probe.from);
    if (!probe.inclusive && this.#keys[at] === probe.from) at += 1;
    for (; at < this.#keys.length; at++) {
      const key = this.#keys[at] as string;
      if (probe.before !== null && compareKeys(key, probe.before) >= 0) return;
      yield key;
    }
  }

  /** Every key starting with `prefix` with its stored value, in order: a snapshot, taken in one step. */
  entries(prefix: string): [string, Buffer][] {
    const snapshot: [string, Buffer][] = [];
    for (let at = this.#lowerBound(prefix); at < this.#keys.length; at++) {
      const key = this.#keys[at] as string;
      if (!key.startsWith(prefix)) break;
      snapshot.push([key, this.#values.get(key) as Buffer]);
    }
    return snapshot;
  }

  /** Applies writes (`null` deletes) in one synchronous step. Call it only while holding the lock. */
  apply(writes: ReadonlyMap<string, Buffer | null>): void {
    for (const [key, value] of writes) {
      const had = this.#values.has(key);
      if (value === null) {
        if (!had) continue;
        this.#values.delete(key);
        this.#keys.splice(this.#lowerBound(key), 1);
      } else {
        if (!had) this.#keys.splice(this.#lowerBound(key), 0, key);
        this.#values.set(key, value);
      }
    }
  }

  /** Waits for the writer lock; resolves to its release, which is safe to call more than once. */
  lock(): Promise<() => void> {
    let unlock!: () => void;
    const held = new Promise<void>((resolve) => {
      unlock = resolve;
    });
    const acquired = this.#writerTail.then(() => {
      let released = false;
      return () => {
        if (released) return;
        released = true;
        unlock();
      };
    });
    this.#writerTail = this.#writerTail.then(() => held);
    return acquired;
  }

  /** A new audit row id: increasing, never reused (a rolled-back row leaves a gap, as a database sequence does). */
  nextAuditId(): number {
    return this.#nextAuditId++;
  }

  /** An audit record of a checked entry, with a new id; its metadata is checked to be JSON now, so a bad row is refused before anything is stored. */
  auditRecord(row: Required<AuditEntry>, backend: string): AuditRecord {
    try {
      JSON.stringify(row.metadata);
    } catch (cause) {
      throw new StorageError(StorageErrorCode.INTERNAL, "invalid audit entry: metadata must be JSON", { backend, cause, retryable: false });
    }
    return { id: this.nextAuditId(), ...row };
  }

  /** Stores audit records, keeping the rows in id order (a transaction's rows may commit after later ids). */
  insertAudit(records: readonly AuditRecord[]): void {
    for (const record of records) {
      const row: StoredAuditRow = {
        ...record,
        timestamp: record.timestamp.getTime(),
        metadata: record.metadata === null ? null : JSON.stringify(record.metadata),
      };
      let at = this.#auditRows.length;
      while (at > 0 && (this.#auditRows[at - 1] as StoredAuditRow).id > row.id) at -= 1;
      this.#auditRows.splice(at, 0, row);
    }
  }

  /** At most `limit` audit rows matching `filter`, oldest (lowest id) first, as fresh records. */
  queryAudit(filter: AuditQuery, limit: number): AuditRecord[] {
    const found: AuditRecord[] = [];
    for (const row of this.#auditRows) {
      if (found.length >= limit) break;
      if (filter.afterId !== undefined && row.id <= filter.afterId) continue;
      if (filter.since !== undefined && row.timestamp < filter.since.getTime()) continue;
      if (filter.until !== undefined && row.timestamp >= filter.until.getTime()) continue;
      if (filter.tenantId !== undefined && row.tenantId !== filter.tenantId) continue;
      if (filter.requestId !== undefined && row.requestId !== filter.requestId) continue;
      if (filter.pathPrefix !== undefined && !row.path.startsWith(filter.pathPrefix)) continue;
      if (filter.operation !== undefined && row.operation !== filter.operation) continue;
      if (filter.success !== undefined && row.success !== filter.success) continue;
      found.push({ ...row, timestamp: new Date(row.timestamp), metadata: row.metadata === null ? null : JSON.parse(row.metadata) });
    }
    return found;
  }

  /** The index of the first key `>= key` in byte order (binary search). */
  #lowerBound(key: string): number {
    let low = 0;
    let high = this.#keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareKeys(this.#keys[middle] as string, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
