import type Database from "better-sqlite3";
import {
  auditQueryLimit,
  normalizeAuditEntry,
  prefixSuccessor,
  type AuditEntry,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
} from "@egide/storage-core";
import { SQLITE_TYPE } from "./sqlite-type.js";

/** How the audit store reaches the backend's connections (and its write queue). */
export interface SqliteAuditAccess {
  read<T>(fn: (db: Database.Database) => T): Promise<T>;
  write<T>(fn: (db: Database.Database) => T): Promise<T>;
}

interface AuditRow {
  id: number;
  timestamp: number;
  tenant_id: string | null;
  operation: string;
  path: string;
  source_ip: string | null;
  user_id: string | null;
  request_id: string | null;
  success: number;
  error_message: string | null;
  metadata: string | null;
}

const INSERT = `INSERT INTO egide_audit_log
  (timestamp, tenant_id, operation, path, source_ip, user_id, request_id, success, error_message, metadata)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`;

/**
 * The audit log in the SQLite database's `egide_audit_log` table: the specification's columns
 * in SQLite types (timestamps in Unix milliseconds, metadata as JSON text, success as 0/1).
 * `append` goes through the writer queue and resolves once the row is committed.
 */
export class SqliteAuditStore implements AuditStore {
  readonly #inserts = new WeakMap<Database.Database, Database.Statement>();

  constructor(readonly access: SqliteAuditAccess) {}

  async append(entry: AuditEntry): Promise<AuditRecord> {
    const row = normalizeAuditEntry(entry, SQLITE_TYPE);
    const id = await this.access.write((db) => db.transaction(() => this.#insert(db, row)).immediate());
    return { id, ...row };
  }

  /** Appends every entry in one synchronous transaction on the writer: all or none, in order. */
  async appendMany(entries: readonly AuditEntry[]): Promise<AuditRecord[]> {
    const rows = entries.map((entry) => normalizeAuditEntry(entry, SQLITE_TYPE));
    if (rows.length === 0) return [];
    const ids = await this.access.write((db) => db.transaction(() => rows.map((row) => this.#insert(db, row))).immediate());
    return rows.map((row, i) => ({ id: ids[i] as number, ...row }));
  }

  /**
   * Appends on `db`, synchronously, inside whatever transaction that connection holds: the
   * row commits or rolls back with it (see `SqliteTransaction.appendAudit`).
   */
  appendOn(db: Database.Database, entry: AuditEntry): AuditRecord {
    const row = normalizeAuditEntry(entry, SQLITE_TYPE);
    return { id: this.#insert(db, row), ...row };
  }

  #insert(db: Database.Database, row: Omit<AuditRecord, "id">): number {
    let insert = this.#inserts.get(db);
    if (!insert) {
      insert = db.prepare(INSERT).pluck();
      this.#inserts.set(db, insert);
    }
    return insert.get(
      row.timestamp.getTime(),
      row.tenantId,
      row.operation,
      row.path,
      row.sourceIp,
      row.userId,
      row.requestId,
      row.success ? 1 : 0,
      row.errorMessage,
      row.metadata === null ? null : JSON.stringify(row.metadata),
    ) as number;
  }

  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, ...values: unknown[]) => {
      where.push(clause);
      params.push(...values);
    };
    if (filter.since) add("timestamp >= ?", filter.since.getTime());
    if (filter.until) add("timestamp < ?", filter.until.getTime());
    if (filter.tenantId !== undefined) add("tenant_id = ?", filter.tenantId.toLowerCase());
    if (filter.requestId !== undefined) add("request_id = ?", filter.requestId.toLowerCase());
    if (filter.operation !== undefined) add("operation = ?", filter.operation);
    if (filter.success !== undefined) add("success = ?", filter.success ? 1 : 0);
    if (filter.afterId !== undefined) add("id > ?", filter.afterId);
    if (filter.pathPrefix) {
      // A range, not LIKE: '%' and '_' in paths are literal characters.
      const upper = prefixSuccessor(filter.pathPrefix);
      if (upper === null) add("path >= ?", filter.pathPrefix);
      else add("path >= ? AND path < ?", filter.pathPrefix, upper);
    }
    const sql = `SELECT * FROM egide_audit_log${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY id LIMIT ${auditQueryLimit(filter)}`;
    const rows = await this.access.read((db) => db.prepare(sql).all(...params) as AuditRow[]);
    return rows.map(toRecord);
  }
}

function toRecord(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    timestamp: new Date(row.timestamp),
    tenantId: row.tenant_id,
    operation: row.operation,
    path: row.path,
    sourceIp: row.source_ip,
    userId: row.user_id,
    requestId: row.request_id,
    success: row.success === 1,
    errorMessage: row.error_message,
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Record<string, unknown>),
  };
}
