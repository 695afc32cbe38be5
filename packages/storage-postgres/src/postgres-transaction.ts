import {
  StorageError,
  StorageErrorCode,
  TransactionGuard,
  type AuditEntry,
  type AuditRecord,
  type AuditingTransaction,
  type ScanEntry,
} from "@egide/storage-core";
import type { ClientLease } from "./client-lease.js";
import type { PostgresBackend } from "./postgres-backend.js";
import { POSTGRES_TYPE } from "./postgres-type.js";
import { toStorageError } from "./postgres-errors.js";
import { asBuffer } from "./as-buffer.js";
import { inKeyOrder } from "./in-key-order.js";

/**
 * The operations of one open transaction, on the one client that holds it. Once the callback
 * settles every method fails with `CLOSED`. It remembers the keys it put or deleted, which the
 * backend's change feed announces at commit.
 */
export class PostgresTransaction implements AuditingTransaction {
  readonly #guard: TransactionGuard;
  readonly #changed = new Set<string>();
  #open = true;

  constructor(
    readonly backend: PostgresBackend,
    readonly lease: ClientLease,
    readOnly: boolean,
  ) {
    this.#guard = new TransactionGuard(POSTGRES_TYPE, readOnly, backend.options.maxValueBytes);
  }

  /** Ends the transaction's usability; called when its callback settles. */
  close(): void {
    this.#open = false;
    this.#guard.close();
  }

  /** The keys put or deleted so far, each once, in the order first written. */
  changedKeys(): string[] {
    return [...this.#changed];
  }

  async get(key: string): Promise<Buffer | null> {
    this.#guard.read(key);
    const result = await this.#query<{ value: Buffer }>("get", this.backend.sql.get, [key]);
    return result.rows[0]?.value ?? null;
  }

  /** The values at `keys` in order, in one statement on this transaction's client (its own writes included). */
  async getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    for (const key of keys) this.#guard.read(key);
    if (keys.length === 0) {
      // No round trip, but still CLOSED after the callback, as every other method.
      if (!this.#open)
        throw new StorageError(StorageErrorCode.CLOSED, "transaction already committed or rolled back", { backend: POSTGRES_TYPE });
      return [];
    }
    const result = await this.#query<{ key: string; value: Buffer }>("getMany", this.backend.sql.getMany, [[...new Set(keys)]]);
    return inKeyOrder(keys, result.rows);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#guard.put(key, value);
    await this.#query("put", this.backend.sql.put, [key, asBuffer(value)]);
    this.#changed.add(key);
  }

  /**
   * One multi-row upsert from two arrays (`unnest`), so a bulk load costs one round trip per
   * batch. PostgreSQL refuses to upsert one key twice in a statement, so later duplicates win
   * here first, as they would with puts one by one.
   */
  async putMany(entries: readonly ScanEntry[]): Promise<void> {
    const latest = new Map<string, Uint8Array>();
    for (const { key, value } of entries) {
      this.#guard.put(key, value);
      latest.delete(key);
      latest.set(key, value);
    }
    if (latest.size === 0) return;
    await this.#query("put", this.backend.sql.putMany, [[...latest.keys()], Array.from(latest.values(), asBuffer)]);
    for (const key of latest.keys()) this.#changed.add(key);
  }

  async delete(key: string): Promise<void> {
    this.#guard.delete(key);
    await this.#query("delete", this.backend.sql.delete, [key]);
    this.#changed.add(key);
  }

  async exists(key: string): Promise<boolean> {
    this.#guard.read(key);
    return (await this.#query("exists", this.backend.sql.exists, [key])).rowCount === 1;
  }

  async list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#guard.list(prefix, after, limit);
    try {
      return await this.backend.listWith(this.lease, prefix, after, limit);
    } catch (error) {
      throw toStorageError(error, "list");
    }
  }

  /** Writes an audit row on this transaction's client: it commits or rolls back with it. */
  async appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    this.#guard.write();
    try {
      return await this.backend.audit.appendOn(this.lease, entry);
    } catch (error) {
      throw toStorageError(error, "audit append");
    }
  }

  async #query<R extends Record<string, unknown>>(operation: string, text: string, values: unknown[]) {
    try {
      return await this.backend.query<R>(this.lease, text, values, operation);
    } catch (error) {
      throw toStorageError(error, operation);
    }
  }
}
