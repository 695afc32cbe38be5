import { StorageError, StorageErrorCode, validateKey, validatePrefix, validateValue } from "@egide/storage-core";
import type { Transaction } from "@egide/storage-core";
import { naiveChildren, naivePage } from "./naive-list.js";

/**
 * A transaction of the {@link ReferenceModel}: writes go to an overlay (`null` marks a delete)
 * that the model applies to its committed map at commit; reads look at the overlay first, so
 * the transaction sees its own writes while nobody else does.
 *
 * The model runs one transaction at a time, so the committed map cannot change under an open
 * transaction and reads need no snapshot copy. `getMany` exists only when the model offers it.
 */
export class ReferenceTransaction implements Transaction {
  /** The writes of this transaction, by key; `null` is a delete. */
  readonly overlay = new Map<string, Buffer | null>();
  readonly #committed: ReadonlyMap<string, Buffer>;
  readonly #readOnly: boolean;
  readonly #maxValueBytes: number;
  readonly #type: string;
  #settled = false;

  /** Present only when the model was created with `getMany: true`. */
  declare readonly getMany?: (keys: readonly string[]) => Promise<(Buffer | null)[]>;

  constructor(committed: ReadonlyMap<string, Buffer>, readOnly: boolean, maxValueBytes: number, type: string, withGetMany = false) {
    this.#committed = committed;
    this.#readOnly = readOnly;
    this.#maxValueBytes = maxValueBytes;
    this.#type = type;
    if (withGetMany) (this as { getMany?: ReferenceTransaction["getMany"] }).getMany = (keys) => this.#getMany(keys);
  }

  async #getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    this.#assertActive();
    for (const key of keys) validateKey(key, this.#type);
    return keys.map((key) => {
      const value = this.overlay.has(key) ? this.overlay.get(key) : this.#committed.get(key);
      return value ? Buffer.from(value) : null;
    });
  }

  /** Marks the transaction finished: every later call fails with `CLOSED`. */
  settle(): void {
    this.#settled = true;
  }

  async get(key: string): Promise<Buffer | null> {
    this.#assertActive();
    validateKey(key, this.#type);
    const value = this.overlay.has(key) ? this.overlay.get(key) : this.#committed.get(key);
    // A copy, so a caller mutating what it read cannot change the store.
    return value ? Buffer.from(value) : null;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#assertActive();
    validateKey(key, this.#type);
    validateValue(value, this.#maxValueBytes, this.#type);
    this.#assertWritable();
    // Copied now: the caller may reuse its buffer before the commit.
    this.overlay.set(key, Buffer.from(value));
  }

  async delete(key: string): Promise<void> {
    this.#assertActive();
    validateKey(key, this.#type);
    this.#assertWritable();
    this.overlay.set(key, null);
  }

  async exists(key: string): Promise<boolean> {
    this.#assertActive();
    validateKey(key, this.#type);
    return this.overlay.has(key) ? this.overlay.get(key) !== null : this.#committed.has(key);
  }

  async list(prefix: string): Promise<string[]> {
    this.#assertActive();
    validatePrefix(prefix, this.#type);
    return naiveChildren(this.#visibleKeys(), prefix);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#assertActive();
    validatePrefix(prefix, this.#type);
    return naivePage(naiveChildren(this.#visibleKeys(), prefix), after, limit);
  }

  #visibleKeys(): Set<string> {
    const keys = new Set(this.#committed.keys());
    for (const [key, value] of this.overlay) {
      if (value === null) keys.delete(key);
      else keys.add(key);
    }
    return keys;
  }

  #assertActive(): void {
    if (this.#settled) {
      throw new StorageError(StorageErrorCode.CLOSED, "transaction already committed or rolled back", {
        backend: this.#type,
      });
    }
  }

  #assertWritable(): void {
    if (this.#readOnly) {
      throw new StorageError(StorageErrorCode.READ_ONLY, "write in a read-only transaction", { backend: this.#type });
    }
  }
}
