import { StorageError, StorageErrorCode } from "./storage-error.js";
import { validateKey, validateListPage, validateValue } from "./validate-input.js";

/**
 * The checks every backend's {@link Transaction} makes before touching its database: the
 * transaction is still open (else `CLOSED`), writes are allowed (else `READ_ONLY`), and keys,
 * values and listing arguments follow the rules.
 */
export class TransactionGuard {
  #open = true;

  /**
   * @param backend the backend type, for messages
   * @param readOnly whether writes are refused
   * @param maxValueBytes the backend's largest value
   */
  constructor(
    readonly backend: string,
    readonly readOnly: boolean,
    readonly maxValueBytes: number,
  ) {}

  /** Ends the transaction's usability; called when its callback settles. */
  close(): void {
    this.#open = false;
  }

  /** Checks a get or exists of `key`. */
  read(key: string): void {
    this.#checkOpen();
    validateKey(key, this.backend);
  }

  /** Checks a put of `value` at `key`. */
  put(key: string, value: Uint8Array): void {
    this.delete(key);
    validateValue(value, this.maxValueBytes, this.backend);
  }

  /** Checks a delete of `key` (any write: the transaction must allow writes). */
  delete(key: string): void {
    this.write();
    validateKey(key, this.backend);
  }

  /** Checks a write that is not keyed (an audit row): the transaction is open and writable. */
  write(): void {
    this.#checkOpen();
    if (this.readOnly) throw new StorageError(StorageErrorCode.READ_ONLY, "write in a read-only transaction", { backend: this.backend });
  }

  /** Checks the arguments of list or listPage. */
  list(prefix: string, after: string, limit: number): void {
    this.#checkOpen();
    validateListPage(prefix, after, limit, this.backend);
  }

  #checkOpen(): void {
    if (!this.#open) {
      throw new StorageError(StorageErrorCode.CLOSED, "transaction already committed or rolled back", { backend: this.backend });
    }
  }
}
