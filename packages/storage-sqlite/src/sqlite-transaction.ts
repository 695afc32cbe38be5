import {
  StorageError,
  StorageErrorCode,
  validateKey,
  validateListPage,
  validateValue,
  type Transaction,
} from "@egide/storage-core";
import { SQLITE_TYPE, toStorageError } from "./sqlite-errors.js";
import type { SqliteStatements } from "./sqlite-statements.js";

/**
 * The operations of one open transaction, run synchronously on the connection that holds it.
 * Once the callback settles the transaction is closed and every method fails with `CLOSED`.
 */
export class SqliteTransaction implements Transaction {
  #open = true;

  constructor(
    readonly connection: SqliteStatements,
    readonly readOnly: boolean,
    readonly maxValueBytes: number,
  ) {}

  /** Ends the transaction's usability; called when its callback settles. */
  close(): void {
    this.#open = false;
  }

  async get(key: string): Promise<Buffer | null> {
    this.#check(key);
    return this.#run("get", () => this.connection.get(key));
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#check(key, true);
    validateValue(value, this.maxValueBytes, SQLITE_TYPE);
    this.#run("put", () => this.connection.put(key, value));
  }

  async delete(key: string): Promise<void> {
    this.#check(key, true);
    this.#run("delete", () => this.connection.delete(key));
  }

  async exists(key: string): Promise<boolean> {
    this.#check(key);
    return this.#run("exists", () => this.connection.exists(key));
  }

  async list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#checkOpen();
    validateListPage(prefix, after, limit, SQLITE_TYPE);
    return this.#run("list", () => this.connection.list(prefix, after, limit));
  }

  #check(key: string, write = false): void {
    this.#checkOpen();
    if (write && this.readOnly) {
      throw new StorageError(StorageErrorCode.READ_ONLY, "write in a read-only transaction", { backend: SQLITE_TYPE });
    }
    validateKey(key, SQLITE_TYPE);
  }

  #checkOpen(): void {
    if (!this.#open) {
      throw new StorageError(StorageErrorCode.CLOSED, "transaction already committed or rolled back", { backend: SQLITE_TYPE });
    }
  }

  #run<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw toStorageError(error, operation);
    }
  }
}
