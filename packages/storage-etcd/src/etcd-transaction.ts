import { CompareResult, CompareTarget, type ICompare, type IKeyValue, type IRequestOp } from "etcd3";
import {
  type AuditEntry,
  type AuditRecord,
  type AuditingTransaction,
  type KeySeek,
  NETWORK_SEEK_BATCH,
  type ScanEntry,
  TransactionGuard,
  compareKeys,
  listChildren,
  runSkipScanAsync,
} from "@egide/storage-core";
import type { EtcdAuditStore, PreparedAudit } from "./etcd-audit-store.js";
import { justAfter } from "./etcd-keyspace.js";
import { ListingProber } from "./etcd-listing.js";
import type { EtcdStore } from "./etcd-store.js";
import { ETCD_TYPE } from "./etcd-type.js";

const EMPTY = Buffer.alloc(0);

/**
 * An optimistic transaction over etcd. Writes are kept here until commit, so nothing outside
 * sees them and the transaction's own reads see them. Reads go to etcd at one revision, pinned
 * by the first read, so they are one snapshot; a read-write transaction remembers what it read
 * (each key's mod revision, and for listings the ranges it scanned) and its commit is one etcd
 * `Txn` that applies every write only if none of that changed since. When something did, the
 * commit is a `CONFLICT` and `transaction()` runs the callback again.
 */
export class EtcdTransaction implements AuditingTransaction {
  readonly #store: EtcdStore;
  readonly #audit: EtcdAuditStore;
  readonly #guard: TransactionGuard;
  readonly #readOnly: boolean;
  /** Storage key → value to put, or null to delete. */
  readonly #writes = new Map<string, Buffer | null>();
  /** Storage key → its mod revision when read ("0": absent). */
  readonly #reads = new Map<string, string>();
  /** Data ranges a listing scanned. */
  readonly #ranges: { key: Buffer; end: Buffer }[] = [];
  readonly #auditRecords: PreparedAudit[] = [];
  #revision: string | undefined;
  #pinning: Promise<void> | undefined;

  constructor(store: EtcdStore, audit: EtcdAuditStore, readOnly: boolean) {
    this.#store = store;
    this.#audit = audit;
    this.#readOnly = readOnly;
    this.#guard = new TransactionGuard(ETCD_TYPE, readOnly, store.options.maxValueBytes);
  }

  /** Ends the transaction's usability (its callback settled). */
  close(): void {
    this.#guard.close();
  }

  async get(key: string): Promise<Buffer | null> {
    this.#guard.read(key);
    const own = this.#writes.get(key);
    if (own !== undefined) return own === null ? null : Buffer.from(own);
    const kv = await this.#readOne(key, false);
    return kv ? kv.value : null;
  }

  async exists(key: string): Promise<boolean> {
    this.#guard.read(key);
    const own = this.#writes.get(key);
    if (own !== undefined) return own !== null;
    return (await this.#readOne(key, true)) !== null;
  }

  async getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    for (const key of keys) this.#guard.read(key);
    const missing = [...new Set(keys.filter((key) => !this.#writes.has(key)))];
    let found = new Map<string, IKeyValue | null>();
    if (missing.length > 0) {
      found = await this.#pinned(async (revision) => {
        const read = await this.#store.readKeys(missing, revision);
        return { revision: read.revision, value: read.found };
      });
      for (const [key, kv] of found) this.#noteRead(key, kv);
    }
    return keys.map((key) => {
      const own = this.#writes.get(key);
      if (own !== undefined) return own === null ? null : Buffer.from(own);
      return found.get(key)?.value ?? null;
    });
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#guard.put(key, value);
    // A copy: the caller may reuse its buffer before the commit.
    this.#writes.set(key, Buffer.from(value));
  }

  async putMany(entries: readonly ScanEntry[]): Promise<void> {
    // Every entry is checked before any is kept, so a bad one leaves the batch out entirely.
    for (const entry of entries) this.#guard.put(entry.key, entry.value);
    for (const entry of entries) this.#writes.set(entry.key, Buffer.from(entry.value));
  }

  async delete(key: string): Promise<void> {
    this.#guard.delete(key);
    this.#writes.set(key, null);
  }

  async appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    this.#guard.write();
    const prepared = this.#audit.prepare(entry);
    this.#auditRecords.push(prepared);
    return prepared.record;
  }

  list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#guard.list(prefix, after, limit);
    const fetched = new Map<string, IKeyValue>();
    const prober = new ListingProber(this.#store, limit);
    const entries = await runSkipScanAsync(listChildren(prefix, after, limit, NETWORK_SEEK_BATCH), (probe) =>
      this.#seek(probe, prober, fetched),
    );
    if (!this.#readOnly) {
      // The listing changes if a listed leaf, or the first key seen of a listed folder, goes away.
      const seen = [...fetched.keys()].sort(compareKeys);
      for (const entry of entries) {
        const key = prefix + entry;
        const kv = entry.endsWith("/") ? fetched.get(seen.find((k) => k.startsWith(key)) ?? "") : fetched.get(key);
        if (kv) this.#noteRead(this.#store.keys.storageKey(kv.key), kv);
      }
    }
    return entries;
  }

  /**
   * Commits the writes (and audit records) in one etcd Txn guarded by what was read; a no-op
   * when nothing was written. Throws `CONFLICT` when a read changed meanwhile.
   */
  async commit(): Promise<void> {
    if (this.#readOnly || (this.#writes.size === 0 && this.#auditRecords.length === 0)) return;
    const keys = this.#store.keys;
    const ops: IRequestOp[] = [];
    let deletes = false;
    for (const [key, value] of this.#writes) {
      if (value === null) {
        deletes = true;
        ops.push({ request_delete_range: { key: keys.dataKey(key) } });
      } else {
        ops.push({ request_put: { key: keys.dataKey(key), value } });
      }
    }
    if (deletes) ops.push({ request_put: { key: keys.deletionMarker, value: EMPTY } });
    for (const record of this.#auditRecords) ops.push({ request_put: { key: record.key, value: record.value } });
    await this.#store.commit({
      what: "commit",
      compares: this.#compares(),
      ops,
      changed: [...this.#writes.keys()].sort(compareKeys),
    });
  }

  /** The compares that guard the commit: what was read is as it was at the snapshot. */
  #compares(): ICompare[] {
    // A transaction's records are prepared as its callback runs, so their ids may come in a few runs.
    const audit = this.#audit.createOnly(this.#auditRecords, 8);
    if (this.#revision === undefined) return audit;
    const keys = this.#store.keys;
    const after = String(Number(this.#revision) + 1);
    const exact: ICompare[] = [
      ...[...this.#reads].map(
        ([key, mod]): ICompare => ({ key: keys.dataKey(key), target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: mod }),
      ),
      ...this.#ranges.map(
        (range): ICompare => ({
          key: range.key,
          range_end: range.end,
          target: CompareTarget.Mod,
          result: CompareResult.Less,
          mod_revision: after,
        }),
      ),
    ];
    // One compare more goes to the write's witness slot (see EtcdStore.apply).
    if (exact.length + audit.length + 1 <= this.#store.options.maxTxnOps / 2) return [...exact, ...audit];
    // Too many reads to compare one by one within etcd's --max-txn-ops: the commit requires that
    // no data key was written and nothing deleted since the snapshot (a stricter test, which
    // may report conflicts that the exact one would not).
    return [
      { key: keys.dataPrefix, range_end: keys.dataEnd, target: CompareTarget.Mod, result: CompareResult.Less, mod_revision: after },
      { key: keys.deletionMarker, target: CompareTarget.Mod, result: CompareResult.Less, mod_revision: after },
      ...audit,
    ];
  }

  async #readOne(key: string, keysOnly: boolean): Promise<IKeyValue | null> {
    const kv = await this.#pinned(async (revision) => {
      const read = await this.#store.readKeys([key], revision, keysOnly);
      return { revision: read.revision, value: read.found.get(key) ?? null };
    });
    this.#noteRead(key, kv);
    return kv;
  }

  /** One skip-scan probe over etcd at the snapshot, merged with this transaction's own writes. */
  async #seek(probe: KeySeek, prober: ListingProber, fetched: Map<string, IKeyValue>): Promise<readonly string[]> {
    const inRange = (key: string) =>
      (probe.inclusive ? compareKeys(key, probe.from) >= 0 : compareKeys(key, probe.from) > 0) &&
      (probe.before === null || compareKeys(key, probe.before) < 0);
    let deleted = 0;
    for (const [key, value] of this.#writes) if (value === null && inRange(key)) deleted++;
    // Fetch as many more as own deletes may hide, so that a short answer still means "no more".
    const response = await this.#pinned(async (revision) => {
      const answer = await prober.seek(probe, revision, deleted);
      return { revision: answer.revision, value: answer };
    });
    const keys = this.#store.keys;
    const found: string[] = [];
    for (const kv of response.kvs) {
      const key = keys.storageKey(kv.key);
      fetched.set(key, kv);
      if (this.#writes.get(key) !== null) found.push(key);
    }
    const last = response.kvs[response.kvs.length - 1];
    if (!this.#readOnly) {
      const from = keys.dataKey(probe.from);
      this.#ranges.push({
        key: probe.inclusive ? from : justAfter(from),
        end: response.more && last ? justAfter(last.key) : keys.dataBound(probe.before),
      });
    }
    const lastKey = response.more && last ? keys.storageKey(last.key) : undefined;
    for (const [key, value] of this.#writes) {
      if (value !== null && inRange(key) && (lastKey === undefined || compareKeys(key, lastKey) <= 0)) found.push(key);
    }
    return [...new Set(found)].sort(compareKeys).slice(0, probe.limit);
  }

  /** Runs a read at the snapshot revision, pinning it with the first read (concurrent first reads wait for it). */
  async #pinned<T>(read: (revision: string | undefined) => Promise<{ revision: string; value: T }>): Promise<T> {
    while (this.#revision === undefined && this.#pinning !== undefined) await this.#pinning.catch(() => undefined);
    if (this.#revision !== undefined) return (await read(this.#revision)).value;
    let release!: () => void;
    this.#pinning = new Promise<void>((resolve) => (release = resolve));
    try {
      const result = await read(undefined);
      this.#revision ??= result.revision;
      return result.value;
    } finally {
      this.#pinning = undefined;
      release();
    }
  }

  #noteRead(key: string, kv: IKeyValue | null): void {
    if (this.#readOnly || this.#reads.has(key)) return;
    this.#reads.set(key, kv ? kv.mod_revision : "0");
  }
}
