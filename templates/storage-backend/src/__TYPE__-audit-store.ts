import {
  type AuditEntry,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
  auditQueryLimit,
  normalizeAuditEntry,
} from "@egide/storage-core";
import type { __Type__Backend } from "./__TYPE__-backend.js";
import { notImplemented } from "./not-implemented.js";

/**
 * The audit log of the __TYPE__ backend, kept in the same database as the data (`AuditStore` in
 * `@egide/storage-core`). Rows are never updated; document in the README how long they are kept
 * and how they are removed. Conformance: describeAuditStoreConformance (every column round-trips,
 * every filter, literal path prefixes, malformed entries refused, `CLOSED` after close, rows
 * appended outside a transaction survive its rollback).
 */
export class __Type__AuditStore implements AuditStore {
  constructor(readonly backend: __Type__Backend) {}

  /**
   * Stores one row and resolves only once it is stored, so that the server can fail closed
   * (refuse the request) when the audit log cannot be written. `normalizeAuditEntry` checks the
   * entry (UUIDs, IP address, types) and fills the defaults; the store assigns `id`, increasing
   * and below 2^53. `metadata` is stored as JSON.
   */
  async append(entry: AuditEntry): Promise<AuditRecord> {
    const row = normalizeAuditEntry(entry, this.backend.type);
    this.backend.assertOpen();
    return this.#insert(row);
  }

  /** Inserts a checked row (every field present) and returns it with the id the store assigned. */
  async #insert(row: Required<AuditEntry>): Promise<AuditRecord> {
    // TODO: insert `row`, durably, and return `{ id, ...row }`.
    throw notImplemented("__Type__AuditStore.append()", row);
  }

  /**
   * The rows matching `filter`, oldest first (by id): `since` inclusive, `until` exclusive,
   * `tenantId`, `requestId`, `operation`, `success`, `afterId` (rows with a larger id), and
   * `pathPrefix` as a literal prefix (`%`, `_` and `\` are ordinary characters). At most
   * `auditQueryLimit(filter)` rows.
   */
  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    this.backend.assertOpen();
    return this.#select(filter, auditQueryLimit(filter));
  }

  /** At most `limit` rows matching `filter`, ordered by id; `timestamp` as a `Date`, `metadata` parsed back. */
  async #select(filter: AuditQuery, limit: number): Promise<AuditRecord[]> {
    // TODO: select the rows.
    throw notImplemented("__Type__AuditStore.query()", filter, limit);
  }
}
