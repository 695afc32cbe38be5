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
  /** Makes the write create-only: an id another writer took already is a conflict, never an overwrite. */
  compare: ICompare;
}

/** Records read per range request of a query. */
const QUERY_PAGE = 512;
/** Records deleted per request of a retention pass, and the most requests one pass makes. */
export const AUDIT_PRUNE_BATCH = 1000;
const AUDIT_PRUNE_MAX_BATCHES = 100;
/** Ids are milliseconds since the epoch times this, plus a counter: below 2^53 until the year 2255. */
const IDS_PER_MS = 1000;

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
        const first = prepared[0] as PreparedAudit;
        await this.#store.commit({
          what: "audit append",
          compares: prepared.map((p) => p.compare),
          ops: prepared.map((p): IRequestOp => ({ request_put: { key: p.key, value: p.value } })),
          changed: [],
          witness: { key: first.key, value: first.value },
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
    this.#lastId = Math.max(this.#lastId + 1, Date.now() * IDS_PER_MS + this.#offset);
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
    return {
      key,
      value: Buffer.from(JSON.stringify(stored), "utf8"),
      record,
      compare: { key, target: CompareTarget.Version, result: CompareResult.Equal, version: 0 },
    };
  }

  /** Records matching `filter`, oldest first. */
  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    this.#store.checkOpen();
    const limit = auditQueryLimit(filter);
    const keys = this.#store.keys;
    const afterId = filter.afterId !== undefined && Number.isFinite(filter.afterId) ? Math.max(-1, Math.floor(filter.afterId)) : -1;
    let from = keys.auditKey(afterId + 1);
    const found: AuditRecord[] = [];
    let revision: string | undefined;
    for (;;) {
      const response = await this.#store.range("audit query", {
        key: from,
        range_end: keys.auditEnd,
        limit: QUERY_PAGE,
        ...(revision !== undefined ? { revision } : {}),
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
      if (!response.more || last === undefined) return found;
      from = justAfter(last.key);
    }
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
