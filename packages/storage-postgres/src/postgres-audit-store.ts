import {
  auditQueryLimit,
  normalizeAuditEntry,
  prefixSuccessor,
  type AuditEntry,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
} from "@egide/storage-core";
import type { ClientLease } from "./client-lease.js";
import { POSTGRES_TYPE } from "./postgres-type.js";
import { quoteIdentifier } from "./postgres-schema.js";

/** Runs `fn` on a leased client (the backend's deadline and error handling apply). */
export type WithClient = <T>(operation: string, fn: (lease: ClientLease) => Promise<T>) => Promise<T>;

interface AuditRow {
  id: string;
  timestamp: Date;
  tenant_id: string | null;
  operation: string;
  path: string;
  source_ip: string | null;
  user_id: string | null;
  request_id: string | null;
  success: boolean;
  error_message: string | null;
  metadata: Record<string, unknown> | null;
}

/**
 * The audit log in PostgreSQL's `egide_audit_log` table (the specification's columns and
 * types: UUID, INET, JSONB). `append` resolves once the row is committed, so a failed audit
 * write reaches the caller.
 */
export class PostgresAuditStore implements AuditStore {
  readonly #table: string;

  constructor(
    schema: string,
    readonly withClient: WithClient,
    readonly operationTimeoutMs = 35_000,
  ) {
    this.#table = `${quoteIdentifier(schema)}.egide_audit_log`;
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    const rows = [normalizeAuditEntry(entry, POSTGRES_TYPE)];
    return (await this.withClient("audit append", (lease) => this.#insert(lease, rows)))[0] as AuditRecord;
  }

  /** Appends every entry with one multi-row INSERT (one statement, one commit): all or none, in order. */
  async appendMany(entries: readonly AuditEntry[]): Promise<AuditRecord[]> {
    const rows = entries.map((entry) => normalizeAuditEntry(entry, POSTGRES_TYPE));
    if (rows.length === 0) return [];
    return this.withClient("audit append", (lease) => this.#insert(lease, rows));
  }

  /**
   * Appends on `lease`, inside whatever transaction its client holds: the row commits or rolls
   * back with it (see `PostgresTransaction.appendAudit`).
   */
  async appendOn(lease: ClientLease, entry: AuditEntry): Promise<AuditRecord> {
    return (await this.#insert(lease, [normalizeAuditEntry(entry, POSTGRES_TYPE)]))[0] as AuditRecord;
  }

  // One INSERT of every row. RETURNING of a multi-row INSERT follows the VALUES order in
  // practice but not by guarantee, so ids are matched back by their order of assignment (a
  // sequence: increasing).
  async #insert(lease: ClientLease, rows: Array<Omit<AuditRecord, "id">>): Promise<AuditRecord[]> {
    const values: unknown[] = [];
    const tuples = rows.map((row, i) => {
      const n = i * 10;
      values.push(
        row.timestamp,
        row.tenantId,
        row.operation,
        row.path,
        row.sourceIp,
        row.userId,
        row.requestId,
        row.success,
        row.errorMessage,
        row.metadata === null ? null : JSON.stringify(row.metadata),
      );
      return `($${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5}::inet, $${n + 6}, $${n + 7}, $${n + 8}, $${n + 9}, $${n + 10}::jsonb)`;
    });
    const text =
      `INSERT INTO ${this.#table} (timestamp, tenant_id, operation, path, source_ip, user_id, request_id, success, error_message, metadata) ` +
      `VALUES ${tuples.join(", ")} RETURNING id`;
    const result = await lease.query<{ id: string }>({ text, values }, this.operationTimeoutMs, "audit append");
    const ids = result.rows.map((r) => Number(r.id)).sort((x, y) => x - y);
    return rows.map((row, i) => ({ id: ids[i] as number, ...row }));
  }

  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const bind = (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    };
    if (filter.since) where.push(`timestamp >= ${bind(filter.since)}`);
    if (filter.until) where.push(`timestamp < ${bind(filter.until)}`);
    if (filter.tenantId !== undefined) where.push(`tenant_id = ${bind(filter.tenantId)}::uuid`);
    if (filter.requestId !== undefined) where.push(`request_id = ${bind(filter.requestId)}::uuid`);
    if (filter.operation !== undefined) where.push(`operation = ${bind(filter.operation)}`);
    if (filter.success !== undefined) where.push(`success = ${bind(filter.success)}`);
    if (filter.afterId !== undefined) where.push(`id > ${bind(filter.afterId)}`);
    if (filter.pathPrefix) {
      // A byte-order range, not LIKE: '%' and '_' in paths are literal characters.
      where.push(`path COLLATE "C" >= ${bind(filter.pathPrefix)}`);
      const upper = prefixSuccessor(filter.pathPrefix);
      if (upper !== null) where.push(`path COLLATE "C" < ${bind(upper)}`);
    }
    const text = `SELECT * FROM ${this.#table}${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY id LIMIT ${auditQueryLimit(filter)}`;
    const result = await this.withClient("audit query", (lease) =>
      lease.query<AuditRow>({ text, values }, this.operationTimeoutMs, "audit query"),
    );
    return result.rows.map((row) => ({
      id: Number(row.id),
      timestamp: row.timestamp,
      tenantId: row.tenant_id,
      operation: row.operation,
      path: row.path,
      sourceIp: row.source_ip,
      userId: row.user_id,
      requestId: row.request_id,
      success: row.success,
      errorMessage: row.error_message,
      metadata: row.metadata,
    }));
  }
}
