import type { AuditEntry, AuditRecord } from "./audit-store.js";
import type { Transaction } from "./storage-backend.js";

/**
 * A transaction of a backend that keeps its audit log in the same database: an audit row
 * appended here commits or rolls back with the transaction's writes. A server uses it so that
 * no change commits without its audit row, and an audit failure undoes the change.
 */
export interface AuditingTransaction extends Transaction {
  /** Writes one audit row inside the transaction. Read-only transactions refuse it (`READ_ONLY`). */
  appendAudit(entry: AuditEntry): Promise<AuditRecord>;
}

/** Whether `tx` can write audit rows inside the transaction. */
export function isAuditingTransaction(tx: Transaction): tx is AuditingTransaction {
  return typeof (tx as Partial<AuditingTransaction>).appendAudit === "function";
}
