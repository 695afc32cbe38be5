import { normalizeAuditEntry, wrapStorage } from "@egide/storage-core";
import type { AuditEntry, AuditRecord, AuditStore, ScanEntry, StorageBackend, Transaction, TransactionOptions } from "@egide/storage-core";
import { ReferenceModel } from "./reference-model.js";
import { requiredTransaction } from "./required-members.js";

/** Which optional capabilities a {@link capabilityFixture} offers. */
export interface CapabilitySet {
  /** Transactions offer `putMany`. */
  putMany?: boolean;
  /** Transactions offer `appendAudit`. */
  appendAudit?: boolean;
  /** The backend has an `audit` store. */
  audit?: boolean;
  /** The audit store offers `appendMany` (with `audit`). */
  appendMany?: boolean;
  /** The backend offers `poolStats()`. */
  poolStats?: boolean;
  /** The backend offers `getMany()`. */
  getMany?: boolean;
  /** Transactions (read-write and read-only) offer `getMany`. */
  transactionGetMany?: boolean;
  /** The backend offers `subscribeChanges()`, the change feed. */
  subscribeChanges?: boolean;
}

const TYPE = "capability-fixture";

/**
 * A {@link ReferenceModel} with exactly the optional capabilities of `caps`, for checking that a
 * decorator keeps what its backend has and invents nothing. The extra members work (bulk puts
 * write through the transaction; audit rows go to an in-memory log, outside the transaction;
 * `getMany` and the change feed are the model's own) but are not themselves under test.
 */
export function capabilityFixture(caps: CapabilitySet): StorageBackend {
  const model = new ReferenceModel({ getMany: caps.getMany === true, changeFeed: caps.subscribeChanges === true });
  const rows: AuditRecord[] = [];
  const append = async (entry: AuditEntry): Promise<AuditRecord> => {
    const record: AuditRecord = { id: rows.length + 1, ...normalizeAuditEntry(entry, TYPE) };
    rows.push(record);
    return record;
  };
  const extend = (tx: Transaction): Transaction => {
    const extended = requiredTransaction(tx) as Transaction & Record<string, unknown>;
    if (caps.putMany) {
      extended.putMany = async (entries: readonly ScanEntry[]) => {
        for (const entry of entries) await tx.put(entry.key, entry.value);
      };
    }
    if (caps.appendAudit) extended.appendAudit = append;
    if (caps.transactionGetMany) extended.getMany = async (keys: readonly string[]) => Promise.all(keys.map((key) => tx.get(key)));
    return extended;
  };
  const backend = wrapStorage(model, {
    transaction: <T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions) =>
      model.transaction((tx) => fn(extend(tx)), options),
  }) as StorageBackend & Record<string, unknown>;
  if (caps.poolStats) backend.poolStats = () => ({ total: 1, idle: 1, active: 0, waiting: 0 });
  if (caps.audit || caps.appendMany) {
    const store: AuditStore = { append, query: async () => rows.map((row) => ({ ...row })) };
    if (caps.appendMany) store.appendMany = async (entries) => Promise.all(entries.map(append));
    backend.audit = store;
  }
  return backend;
}
