import {
  StorageError,
  StorageErrorCode,
  TransactionGuard,
  type AuditEntry,
  type AuditRecord,
  type AuditingTransaction,
  type ScanEntry,
} from "@egide/storage-core";
import { ChangedKeys } from "./changed-keys.js";
import type { SqliteAuditStore } from "./sqlite-audit-store.js";
import { SQLITE_TYPE } from "./sqlite-type.js";
import { toStorageError } from "./sqlite-errors.js";
import type { SqliteConnection } from "./sqlite-connection.js";

/**
 * The operations of one open transaction, run synchronously on the connection that holds it.
 * Once the callback settles the transaction is closed and every method fails with `CLOSED`.
 */
export class SqliteTransaction implements AuditingTransaction {
  /** The keys this transaction put or deleted, for the change feed once it commits. */
  readonly changes = new ChangedKeys();
  readonly #guard: TransactionGuard;
  #open = true;

  constructor(
    readonly connection: SqliteConnection,
    readOnly: boolean,
    maxValueBytes: number,
    readonly auditStore: SqliteAuditStore,
  ) {
    this.#guard = new TransactionGuard(SQLITE_TYPE, readOnly, maxValueBytes);
  }

  /** Ends the transaction's usability; called when its callback settles. */
  close(): void {
    this.#open = false;
    this.#guard.close();
  }

  async get(key: string): Promise<Buffer | null> {
    this.#guard.read(key);
    return this.#run("get", () => this.connection.get(key));
  }

  /** Reads every key by one statement on this transaction's connection, so it sees the transaction's own writes. */
  async getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    // With no key there is nothing for the guard to check, but a closed transaction still refuses.
    if (!this.#open) {
      throw new StorageError(StorageErrorCode.CLOSED, "transaction already committed or rolled back", { backend: SQLITE_TYPE });
    }
    for (const key of keys) this.#guard.read(key);
    return this.#run("getMany", () => this.connection.getMany(keys));
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#guard.put(key, value);
    this.#run("put", () => this.connection.put(key, value));
    this.changes.add(key);
  }

  /** Puts one after another on this connection: in SQLite a statement costs no round trip. */
  async putMany(entries: readonly ScanEntry[]): Promise<void> {
    for (const { key, value } of entries) this.#guard.put(key, value);
    this.#run("put", () => {
      // Recorded one by one: when a put fails half-way, the ones before it stay written (and
      // commit, if the callback goes on), so the feed must know them.
      for (const { key, value } of entries) {
        this.connection.put(key, value);
        this.changes.add(key);
      }
    });
  }

  async delete(key: string): Promise<void> {
    this.#guard.delete(key);
    this.#run("delete", () => this.connection.delete(key));
    this.changes.add(key);
  }

  async exists(key: string): Promise<boolean> {
    this.#guard.read(key);
    return this.#run("exists", () => this.connection.exists(key));
  }

  async list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#guard.list(prefix, after, limit);
    return this.#run("list", () => this.connection.list(prefix, after, limit));
  }

  /** Writes an audit row on this transaction's connection: it commits or rolls back with it. */
  async appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    this.#guard.write();
    return this.#run("audit append", () => this.auditStore.appendOn(this.connection.db, entry));
  }

  #run<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw toStorageError(error, operation);
    }
  }
}
