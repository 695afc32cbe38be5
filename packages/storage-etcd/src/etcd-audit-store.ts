import { randomInt } from "node:crypto";
import { CompareResult, CompareTarget, type ICompare, type IRequestOp } from "etcd3";
import {
  type AuditEntry,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
  StorageError,
  StorageErrorCode,
  auditQueryLimit,
  normalizeAuditEntry,
  withRetries,
} from "@egide/storage-core";
import { justAfter } from "./etcd-keyspace.js";
import type { EtcdStore } from "./etcd-store.js";
import { ETCD_TYPE } from "./etcd-type.js";

/** An audit record ready to be written: its key, its encoded value and the record itself. */
export interface PreparedAudit {
  key: Buffer;
  value: Buffer;
  record: AuditRecord;
}

/** Records read per range request of a query. */
const QUERY_PAGE = 512;
/** Records deleted per request of a retention pass, and the most requests one pass makes. */
export const AUDIT_PRUNE_BATCH = 1000;
const AUDIT_PRUNE_MAX_BATCHES = 100;
/** Ids are milliseconds since the epoch times this, plus a counter: below 2^53 until the year 2255. */
const IDS_PER_MS = 1000;
/** No id is larger (2^53 - 1, 16 digits): a 17-digit key would sort before the records, not after. */
const MAX_AUDIT_ID = Number.MAX_SAFE_INTEGER;
/** The first id window of a query: one second of appends. */
const INITIAL_QUERY_WINDOW = 1000 * IDS_PER_MS;
/**
 * How far before `since` a query starts reading ids. A record's id is never earlier than its
 * timestamp minus this (see `prepare`), so the margin only covers the appending process's clock
 * stepping back between the two readings; a record whose timestamp is given further in the
 * future than this moves the process's ids forward instead.
 */
export const AUDIT_SINCE_MARGIN_MS = 1000;

/** The stored form of a record: short field names, the time in milliseconds. */
interface StoredAudit {
  id: number;
  t: number;
  tenant: string | null;
  op: string;
  path: string;
  ip: string | null;
  user: string | null;
  req: string | null;
  ok: boolean;
  err: string | null;
  meta: Record<string, unknown> | null;
}

/**
 * The audit log in etcd, beside the data: each record is one key, `P` + `audit/` + its id as 16
 * digits, holding the record as JSON. An id is the append time in milliseconds times 1,000 plus
 * a counter (and a per-process offset), so ids increase with time, sort as their keys do, and
 * keep appends free of any shared counter key that concurrent writers would fight over: each
 * write is create-only (`version = 0` compare), so two processes that pick the same id conflict
 * and the loser takes the next. Queries read the records in id order from `afterId` on, in
 * pages, filtering as they go. Retention deletes the records older than `audit_retention` (by
 * the time in their id) in bounded batches.
 */
export class EtcdAuditStore implements AuditStore {
  readonly #store: EtcdStore;
  readonly #retentionMs: number;
  readonly #offset = randomInt(0, IDS_PER_MS);
  #lastId = 0;
  #timer: NodeJS.Timeout | undefined;
  #pruning: Promise<number> | undefined;
  #lastPruneError: StorageError | undefined;

  constructor(store: EtcdStore, retentionMs: number) {
    this.#store = store;
    this.#retentionMs = retentionMs;
  }

  /** The error of the last background retention pass, if it failed (for health reporting). */
  get lastPruneError(): StorageError | undefined {
    return this.#lastPruneError;
  }

  /** Writes one record; resolves once etcd committed it. */
  async append(entry: AuditEntry): Promise<AuditRecord> {
    const [record] = await this.appendMany([entry]);
    return record as AuditRecord;
  }

  /** Writes several records in one etcd transaction, all or none, in order. */
  async appendMany(entries: readonly AuditEntry[]): Promise<AuditRecord[]> {
    this.#store.checkOpen();
    const normalized = entries.map((entry) => normalizeAuditEntry(entry, ETCD_TYPE));
    if (normalized.length === 0) return [];
    return withRetries(
      async () => {
        const prepared = normalized.map((entry) => this.prepare(entry));
        await this.#store.commit({
          what: "audit append",
          compares: this.createOnly(prepared, this.#store.options.maxTxnOps / 2 - 1),
          ops: prepared.map((p): IRequestOp => ({ request_put: { key: p.key, value: p.value } })),
          changed: [],
        });
        return prepared.map((p) => p.record);
      },
      { attempts: 10, shouldRetry: (error) => StorageError.isInstance(error, StorageErrorCode.CONFLICT) },
    );
  }

  /**
   * A record for `entry` with a fresh id, and the write that stores it (used by transactions,
   * whose commit carries it). Throws on a malformed entry.
   */
  prepare(entry: AuditEntry): PreparedAudit {
    const normal = normalizeAuditEntry(entry, ETCD_TYPE);
    // Never earlier than the timestamp minus the margin, so that `since` can start a query (see AUDIT_SINCE_MARGIN_MS).
    const time = Math.max(Date.now(), normal.timestamp.getTime() - AUDIT_SINCE_MARGIN_MS);
    this.#lastId = Math.max(this.#lastId + 1, time * IDS_PER_MS + this.#offset);
    const id = this.#lastId;
    const record: AuditRecord = { id, ...normal };
    const stored: StoredAudit = {
      id,
      t: normal.timestamp.getTime(),
      tenant: normal.tenantId,
      op: normal.operation,
      path: normal.path,
      ip: normal.sourceIp,
      user: normal.userId,
      req: normal.requestId,
      ok: normal.success,
      err: normal.errorMessage,
      meta: normal.metadata,
    };
    const key = this.#store.keys.auditKey(id);
    return { key, value: Buffer.from(JSON.stringify(stored), "utf8"), record };
  }

  /**
   * The compares that make writing `records` create-only (an id another writer took already is
   * a conflict, never an overwrite): one range compare "no key created" per run of consecutive
   * ids, whatever the number of records; past `budget` runs, one over the whole span (stricter:
   * a record another process appended in between also conflicts).
   */
  createOnly(records: readonly PreparedAudit[], budget: number): ICompare[] {
    const ids = records.map((record) => record.record.id).sort((a, b) => a - b);
    const runs: [number, number][] = [];
    for (const id of ids) {
      const last = runs[runs.length - 1];
      if (last && id <= last[1] + 1) last[1] = Math.max(last[1], id);
      else runs.push([id, id]);
    }
    const first = runs[0];
    const final = runs[runs.length - 1];
    if (first === undefined || final === undefined) return [];
    const spans = runs.length <= Math.max(1, budget) ? runs : [[first[0], final[1]] as [number, number]];
    const keys = this.#store.keys;
    return spans.map(([from, to]) => ({
      key: keys.auditKey(from),
      range_end: keys.auditKey(to + 1),
      target: CompareTarget.Create,
      result: CompareResult.Equal,
      create_revision: "0",
    }));
  }

  /**
   * Records matching `filter`, oldest first. The log is read in id order from `afterId` (and,
   * with `since`, from the ids of `since` minus {@link AUDIT_SINCE_MARGIN_MS}) in pages, each
   * bounded by an id window (doubling while sparse; while dense, twice the ids the last page
   * spanned) so that etcd walks the keys of that window only, not the whole rest of the log; an
   * empty window is followed by one request for the next record, which skips the gap.
   */
  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    this.#store.checkOpen();
    const limit = auditQueryLimit(filter);
    const keys = this.#store.keys;
    const afterId = filter.afterId !== undefined && Number.isFinite(filter.afterId) ? Math.max(-1, Math.floor(filter.afterId)) : -1;
    let cursor = afterId + 1;
    const since = filter.since?.getTime();
    if (since !== undefined && Number.isFinite(since)) cursor = Math.max(cursor, Math.floor((since - AUDIT_SINCE_MARGIN_MS) * IDS_PER_MS));
    if (!(cursor <= MAX_AUDIT_ID)) return [];
    const found: AuditRecord[] = [];
    let revision: string | undefined;
    let span = INITIAL_QUERY_WINDOW;
    const at = () => (revision !== undefined ? { revision } : {});
    for (;;) {
      const windowEnd = cursor + span;
      const response = await this.#store.range("audit query", {
        key: keys.auditKey(cursor),
        range_end: windowEnd > MAX_AUDIT_ID ? keys.auditEnd : keys.auditKey(windowEnd),
        limit: QUERY_PAGE,
        ...at(),
      });
      revision ??= response.header.revision;
      for (const kv of response.kvs) {
        const record = decode(kv.value, kv.key);
        if (matches(record, filter)) {
          found.push(record);
          if (found.length >= limit) return found;
        }
      }
      const last = response.kvs[response.kvs.length - 1];
      if (response.more && last !== undefined) {
        // Dense: the next window spans twice the ids this page's records did (about two pages of records).
        const next = this.#idOf(last.key) + 1;
        span = Math.max(IDS_PER_MS, 2 * (next - cursor));
        cursor = next;
        continue;
      }
      if (windowEnd > MAX_AUDIT_ID) return found;
      span = Math.min(MAX_AUDIT_ID, span * 2);
      if (last !== undefined) {
        cursor = windowEnd;
        continue;
      }
      // An empty window: jump to the next record, if any (one request walking the rest once).
      const next = await this.#store.range("audit query", {
        key: keys.auditKey(windowEnd),
        range_end: keys.auditEnd,
        limit: 1,
        keys_only: true,
        ...at(),
      });
      const nextKey = next.kvs[0]?.key;
      if (nextKey === undefined) return found;
      cursor = this.#idOf(nextKey);
    }
  }

  /** The id of an audit key. */
  #idOf(key: Buffer): number {
    return Number(key.toString("ascii", this.#store.keys.auditPrefix.length));
  }

  /**
   * Deletes the records appended more than `audit_retention` before `now`, oldest first, at most
   * 1,000 a request and 100 requests a pass; resolves with how many it deleted. A no-op without
   * a retention. Passes do not overlap.
   */
  prune(now: number = Date.now()): Promise<number> {
    if (this.#retentionMs <= 0) return Promise.resolve(0);
    this.#pruning ??= this.#prune(now).finally(() => {
      this.#pruning = undefined;
    });
    return this.#pruning;
  }

  /** Starts the periodic retention pass (every tenth of the retention, between 1 s and 10 min). */
  startRetention(): void {
    if (this.#retentionMs <= 0 || this.#timer) return;
    const every = Math.min(600_000, Math.max(1000, this.#retentionMs / 10));
    this.#timer = setInterval(() => {
      this.prune().then(
        () => {
          this.#lastPruneError = undefined;
        },
        (error: unknown) => {
          this.#lastPruneError = StorageError.isInstance(error)
            ? error
            : new StorageError(StorageErrorCode.INTERNAL, String(error), { backend: ETCD_TYPE });
        },
      );
    }, every);
    this.#timer.unref();
  }

  /** Stops the periodic retention pass. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #prune(now: number): Promise<number> {
    const keys = this.#store.keys;
    const cutoff = keys.auditKey(Math.max(0, Math.floor((now - this.#retentionMs) * IDS_PER_MS)));
    let deleted = 0;
    for (let batch = 0; batch < AUDIT_PRUNE_MAX_BATCHES; batch++) {
      this.#store.checkOpen();
      const old = await this.#store.range("audit retention", {
        key: keys.auditPrefix,
        range_end: cutoff,
        limit: AUDIT_PRUNE_BATCH,
        keys_only: true,
      });
      const last = old.kvs[old.kvs.length - 1];
      if (last === undefined) break;
      const rangeEnd = justAfter(last.key);
      const response = await this.#store.connection.run("audit retention", (options) =>
        this.#store.connection.kv.deleteRange({ key: keys.auditPrefix, range_end: rangeEnd }, options),
      );
      deleted += Number(response.deleted);
      if (!old.more) break;
    }
    return deleted;
  }
}

function decode(value: Buffer, key: Buffer): AuditRecord {
  let stored: StoredAudit;
  try {
    stored = JSON.parse(value.toString("utf8")) as StoredAudit;
  } catch (cause) {
    throw new StorageError(StorageErrorCode.CORRUPT, `audit record ${key.toString("utf8")} is not valid JSON`, {
      backend: ETCD_TYPE,
      cause,
    });
  }
  return {
    id: stored.id,
    timestamp: new Date(stored.t),
    tenantId: stored.tenant,
    operation: stored.op,
    path: stored.path,
    sourceIp: stored.ip,
    userId: stored.user,
    requestId: stored.req,
    success: stored.ok,
    errorMessage: stored.err,
    metadata: stored.meta,
  };
}

function matches(record: AuditRecord, filter: AuditQuery): boolean {
  const time = record.timestamp.getTime();
  if (filter.since !== undefined && time < filter.since.getTime()) return false;
  if (filter.until !== undefined && time >= filter.until.getTime()) return false;
  if (filter.tenantId !== undefined && record.tenantId !== filter.tenantId) return false;
  if (filter.requestId !== undefined && record.requestId !== filter.requestId) return false;
  if (filter.pathPrefix !== undefined && !record.path.startsWith(filter.pathPrefix)) return false;
  if (filter.operation !== undefined && record.operation !== filter.operation) return false;
  if (filter.success !== undefined && record.success !== filter.success) return false;
  return true;
}
