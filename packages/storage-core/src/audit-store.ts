import { isIP } from "node:net";
import { StorageError, StorageErrorCode } from "./storage-error.js";

/**
 * One audit event, with the fields of the specification's `egide_audit_log` table.
 * Never put a secret value or a token here: audit rows are readable by operators.
 */
export interface AuditEntry {
  /** When the event happened; defaults to the time of `append`. */
  timestamp?: Date;
  /** The tenant, as a UUID. */
  tenantId?: string | null;
  /** What was done ("read", "update", "login", …). */
  operation: string;
  /** The request path. */
  path: string;
  /** The client's IPv4 or IPv6 address. */
  sourceIp?: string | null;
  /** Who did it (a token accessor, never the token). */
  userId?: string | null;
  /** The request's id, as a UUID. */
  requestId?: string | null;
  /** Whether the operation succeeded. */
  success: boolean;
  /** Why it failed, when it did. */
  errorMessage?: string | null;
  /** Further structured detail (status code, policies, …), stored as JSON. */
  metadata?: Record<string, unknown> | null;
}

/** A stored audit row: every field present, `id` assigned by the store. */
export interface AuditRecord {
  /** Increasing row id (below 2^53). */
  id: number;
  timestamp: Date;
  tenantId: string | null;
  operation: string;
  path: string;
  sourceIp: string | null;
  userId: string | null;
  requestId: string | null;
  success: boolean;
  errorMessage: string | null;
  metadata: Record<string, unknown> | null;
}

/** Filters of {@link AuditStore.query}; all are optional and combine with AND. */
export interface AuditQuery {
  /** Rows at or after this time. */
  since?: Date;
  /** Rows before this time. */
  until?: Date;
  tenantId?: string;
  requestId?: string;
  /** Rows whose path starts with this string (a literal prefix; no wildcards). */
  pathPrefix?: string;
  operation?: string;
  success?: boolean;
  /** Rows with a larger id than this, for paging. */
  afterId?: number;
  /** At most this many rows (default 1000, at most 10000). */
  limit?: number;
}

/** An append-only audit log kept in the storage backend's own database. */
export interface AuditStore {
  /** Writes one row; resolves only once it is stored, so a failure reaches the caller. */
  append(entry: AuditEntry): Promise<AuditRecord>;
  /**
   * Writes several rows in one commit, all or none, in order; resolves once they are stored.
   * Optional: a server batching the rows of concurrent requests uses it when present (one
   * commit, and on PostgreSQL one statement, instead of one per row).
   */
  appendMany?(entries: readonly AuditEntry[]): Promise<AuditRecord[]>;
  /** Rows matching `filter`, oldest first (by id). */
  query(filter?: AuditQuery): Promise<AuditRecord[]>;
}

/** The default and the largest page of {@link AuditStore.query}. */
export const AUDIT_QUERY_DEFAULT_LIMIT = 1000;
export const AUDIT_QUERY_MAX_LIMIT = 10000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks an audit entry the same way for every backend (PostgreSQL would reject a bad UUID or
 * INET itself; SQLite would not), and returns it with defaults filled in.
 */
export function normalizeAuditEntry(entry: AuditEntry, backend?: string): Required<AuditEntry> {
  const invalid = (what: string) =>
    new StorageError(StorageErrorCode.INTERNAL, `invalid audit entry: ${what}`, { backend, retryable: false });
  if (typeof entry.operation !== "string" || entry.operation === "") throw invalid("operation must be a non-empty string");
  if (typeof entry.path !== "string") throw invalid("path must be a string");
  if (typeof entry.success !== "boolean") throw invalid("success must be a boolean");
  if (entry.tenantId != null && !UUID.test(entry.tenantId)) throw invalid("tenantId must be a UUID");
  if (entry.requestId != null && !UUID.test(entry.requestId)) throw invalid("requestId must be a UUID");
  if (entry.sourceIp != null && isIP(entry.sourceIp) === 0) throw invalid("sourceIp must be an IP address");
  const timestamp = entry.timestamp ?? new Date();
  if (!(timestamp instanceof Date) || Number.isNaN(timestamp.getTime())) throw invalid("timestamp must be a valid Date");
  return {
    timestamp,
    tenantId: entry.tenantId ?? null,
    operation: entry.operation,
    path: entry.path,
    sourceIp: entry.sourceIp ?? null,
    userId: entry.userId ?? null,
    requestId: entry.requestId ?? null,
    success: entry.success,
    errorMessage: entry.errorMessage ?? null,
    metadata: entry.metadata ?? null,
  };
}

/** The effective row limit of a query. */
export function auditQueryLimit(filter: AuditQuery): number {
  const limit = filter.limit ?? AUDIT_QUERY_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) return AUDIT_QUERY_DEFAULT_LIMIT;
  return Math.min(limit, AUDIT_QUERY_MAX_LIMIT);
}
