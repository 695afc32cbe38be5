import { StorageError, StorageErrorCode, compareKeys, validateKey } from "@egide/storage-core";
import type { HealthStatus, ScanEntry, StorageBackend, Transaction } from "@egide/storage-core";

/**
 * A read-only storage holding a handful of records, such as a backup header's unseal records:
 * a `SealManager` opened over it (read-only) recovers the master key of the installation the
 * backup came from with its unseal shares, without the installation's database. Reads work;
 * every write, and a transaction, fails with `READ_ONLY`.
 */
export class RecordsView implements StorageBackend {
  readonly type = "records-view";
  readonly #records: Map<string, Buffer>;

  constructor(records: readonly ScanEntry[]) {
    this.#records = new Map(records.map((record) => [record.key, Buffer.from(record.value)]));
  }

  async get(key: string): Promise<Buffer | null> {
    validateKey(key, this.type);
    const value = this.#records.get(key);
    return value === undefined ? null : Buffer.from(value);
  }

  async exists(key: string): Promise<boolean> {
    return (await this.get(key)) !== null;
  }

  async put(): Promise<void> {
    throw readOnly();
  }

  async delete(): Promise<void> {
    throw readOnly();
  }

  async list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    const children = new Set<string>();
    for (const key of this.#records.keys()) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf("/");
      children.add(slash < 0 ? rest : rest.slice(0, slash + 1));
    }
    const sorted = [...children].filter((child) => after === "" || compareKeys(child, after) > 0).sort(compareKeys);
    return limit > 0 ? sorted.slice(0, limit) : sorted;
  }

  async *scan(prefix: string): AsyncGenerator<ScanEntry> {
    const keys = [...this.#records.keys()].filter((key) => key.startsWith(prefix)).sort(compareKeys);
    for (const key of keys) yield { key, value: Buffer.from(this.#records.get(key) as Buffer) };
  }

  async transaction<T>(_fn: (tx: Transaction) => Promise<T>): Promise<T> {
    throw readOnly();
  }

  async health(): Promise<HealthStatus> {
    return { status: "healthy", latencyMs: 0 };
  }

  async close(): Promise<void> {
    for (const value of this.#records.values()) value.fill(0);
    this.#records.clear();
  }
}

function readOnly(): StorageError {
  return new StorageError(StorageErrorCode.READ_ONLY, "a records view is read-only", { backend: "records-view" });
}
