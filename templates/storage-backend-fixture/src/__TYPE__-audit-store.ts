import {
  type AuditEntry,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
  auditQueryLimit,
  normalizeAuditEntry,
} from "@egide/storage-core";
import type { __Type__Backend } from "./__TYPE__-backend.js";

/**
 * The audit log of the in-memory __TYPE__ backend: rows kept in id order beside the data, for
 * the life of the backend object (retention: until the process ends). An append outside a
 * transaction is stored at once, without waiting for the writer lock, so it survives the
 * rollback of a transaction that is open meanwhile.
 */
export class __Type__AuditStore implements AuditStore {
  constructor(readonly backend: __Type__Backend) {}

  async append(entry: AuditEntry): Promise<AuditRecord> {
    const row = normalizeAuditEntry(entry, this.backend.type);
    this.backend.assertOpen();
    const record = this.backend.store.auditRecord(row, this.backend.type);
    this.backend.store.insertAudit([record]);
    return record;
  }

  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    this.backend.assertOpen();
    return this.backend.store.queryAudit(filter, auditQueryLimit(filter));
  }
}
