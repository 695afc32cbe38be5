import {
  StorageError,
  StorageErrorCode,
  validateKey,
  validateListPage,
  validateValue,
  type Transaction,
} from "@egide/storage-core";
import type { ClientLease } from "./client-lease.js";
import type { PostgresBackend } from "./postgres-backend.js";
import { POSTGRES_TYPE, toStorageError } from "./postgres-errors.js";

/**
 * The operations of one open transaction, on the one client that holds it. Once the callback
 * settles every method fails with `CLOSED`.
 */
export class PostgresTransaction implements Transaction {
  #open = true;

  constructor(
    readonly backend: PostgresBackend,
    readonly lease: ClientLease,
    readonly readOnly: boolean,
  ) {}

  /** Ends the transaction's usability; called when its callback settles. */
  close(): void {
    this.#open = false;
  }

  async get(key: string): Promise<Buffer | null> {
    this.#check(key);
    const result = await this.#run("get", () => this.backend.query<{ value: Buffer }>(this.lease, this.backend.statements.get, [key], "get"));
    return result.rows[0]?.value ?? null;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#check(key, true);
    validateValue(value, this.backend.options.maxValueBytes, POSTGRES_TYPE);
    const buffer = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    await this.#run("put", () => this.backend.query(this.lease, this.backend.statements.put, [key, buffer], "put"));
  }

  async delete(key: string): Promise<void> {
    this.#check(key, true);
    await this.#run("delete", () => this.backend.query(this.lease, this.backend.statements.delete, [key], "delete"));
  }

  async exists(key: string): Promise<boolean> {
    this.#check(key);
    const result = await this.#run("exists", () => this.backend.query(this.lease, this.backend.statements.exists, [key], "exists"));
    return result.rowCount === 1;
  }

  async list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#checkOpen();
    validateListPage(prefix, after, limit, POSTGRES_TYPE);
    return this.#run("list", () => this.backend.listWith(this.lease, prefix, after, limit));
  }

  #check(key: string, write = false): void {
    this.#checkOpen();
    if (write && this.readOnly) {
      throw new StorageError(StorageErrorCode.READ_ONLY, "write in a read-only transaction", { backend: POSTGRES_TYPE });
    }
    validateKey(key, POSTGRES_TYPE);
  }

  #checkOpen(): void {
    if (!this.#open) {
      throw new StorageError(StorageErrorCode.CLOSED, "transaction already committed or rolled back", { backend: POSTGRES_TYPE });
    }
  }

  async #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toStorageError(error, operation);
    }
  }
}
