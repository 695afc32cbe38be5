import { compareKeys } from "../src/index.js";
import type {
  AuditEntry,
  AuditRecord,
  AuditStore,
  HealthStatus,
  ScanEntry,
  StorageBackend,
  Transaction,
  TransactionOptions,
} from "../src/index.js";

/** Which optional capabilities a {@link memoryStorage} offers. */
export interface MemoryCapabilities {
  putMany?: boolean;
  appendAudit?: boolean;
  audit?: boolean;
  appendMany?: boolean;
  poolStats?: boolean;
}

/** A small in-memory backend for core's own tests (no isolation: transactions write through). */
export function memoryStorage(caps: MemoryCapabilities = {}): StorageBackend & { data: Map<string, Buffer>; rows: AuditRecord[] } {
  const data = new Map<string, Buffer>();
  const rows: AuditRecord[] = [];
  const append = async (entry: AuditEntry): Promise<AuditRecord> => {
    const row: AuditRecord = {
      id: rows.length + 1,
      timestamp: entry.timestamp ?? new Date(),
      tenantId: null,
      operation: entry.operation,
      path: entry.path,
      sourceIp: null,
      userId: null,
      requestId: null,
      success: entry.success,
      errorMessage: null,
      metadata: null,
    };
    rows.push(row);
    return row;
  };
  const ops: Transaction = {
    get: async (key) => data.get(key) ?? null,
    put: async (key, value) => void data.set(key, Buffer.from(value)),
    delete: async (key) => void data.delete(key),
    exists: async (key) => data.has(key),
    list: async (prefix) => ops.listPage(prefix, "", 0),
    listPage: async (prefix, after, limit) => {
      const children = new Set<string>();
      for (const key of data.keys()) {
        if (!key.startsWith(prefix) || key === prefix) continue;
        const rest = key.slice(prefix.length);
        const slash = rest.indexOf("/");
        children.add(slash < 0 ? rest : rest.slice(0, slash + 1));
      }
      const sorted = [...children].filter((child) => after === "" || compareKeys(child, after) > 0).sort(compareKeys);
      return limit > 0 ? sorted.slice(0, limit) : sorted;
    },
  };
  const tx: Transaction & Record<string, unknown> = { ...ops };
  if (caps.putMany)
    tx.putMany = async (entries: readonly ScanEntry[]) => {
      for (const e of entries) data.set(e.key, Buffer.from(e.value));
    };
  if (caps.appendAudit) tx.appendAudit = append;
  const backend: StorageBackend & Record<string, unknown> = {
    type: "memory",
    ...ops,
    async *scan(prefix: string): AsyncIterable<ScanEntry> {
      for (const key of [...data.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys))
        yield { key, value: data.get(key) as Buffer };
    },
    transaction: <T>(fn: (tx: Transaction) => Promise<T>, _options?: TransactionOptions) => fn(tx),
    health: async (): Promise<HealthStatus> => ({ status: "healthy", latencyMs: 0 }),
    close: async () => undefined,
    data,
    rows,
  };
  if (caps.poolStats) backend.poolStats = () => ({ total: 2, idle: 1, active: 1, waiting: 0 });
  if (caps.audit) {
    const store: AuditStore = { append, query: async () => [...rows] };
    if (caps.appendMany) store.appendMany = async (entries) => Promise.all(entries.map(append));
    backend.audit = store;
  }
  return backend as unknown as StorageBackend & { data: Map<string, Buffer>; rows: AuditRecord[] };
}
