/**
 * The codes every storage error carries. Callers branch on `code`, never on the message.
 */
export const StorageErrorCode = {
  INVALID_KEY: "INVALID_KEY",
  VALUE_TOO_LARGE: "VALUE_TOO_LARGE",
  CONFLICT: "CONFLICT",
  UNAVAILABLE: "UNAVAILABLE",
  TIMEOUT: "TIMEOUT",
  CORRUPT: "CORRUPT",
  SEALED: "SEALED",
  READ_ONLY: "READ_ONLY",
  CLOSED: "CLOSED",
  INTERNAL: "INTERNAL",
} as const;

/** One of the values of {@link StorageErrorCode}. */
export type StorageErrorCode = (typeof StorageErrorCode)[keyof typeof StorageErrorCode];

/** Codes whose failures may succeed when the same operation is tried again. */
const RETRYABLE_BY_DEFAULT: ReadonlySet<StorageErrorCode> = new Set<StorageErrorCode>([
  StorageErrorCode.CONFLICT,
  StorageErrorCode.UNAVAILABLE,
  StorageErrorCode.TIMEOUT,
]);

// A registered symbol, not a class reference: two copies of storage-core (two versions in one
// node_modules tree) still recognise each other's errors.
const STORAGE_ERROR_BRAND = Symbol.for("@egide/storage-core/StorageError");

/** Options shared by every storage error constructor. */
export interface StorageErrorOptions {
  /** The backend type that raised the error ("sqlite", "postgresql", …). */
  backend?: string;
  /** The underlying driver error, kept for operators; never shown to API clients. */
  cause?: unknown;
  /** Overrides the default retryability of the code. */
  retryable?: boolean;
}

/**
 * The one error type that crosses package boundaries in Egide's storage layer.
 * Messages name the backend; `cause` holds the driver's own error.
 */
export class StorageError extends Error {
  /** What went wrong, as a stable code. */
  readonly code: StorageErrorCode;
  /** Whether trying the same operation again may succeed. */
  readonly retryable: boolean;
  /** The backend type that raised the error, when known. */
  readonly backend: string | undefined;

  constructor(code: StorageErrorCode, message: string, options: StorageErrorOptions = {}) {
    super(options.backend ? `${options.backend}: ${message}` : message, { cause: options.cause });
    this.name = "StorageError";
    this.code = code;
    this.backend = options.backend;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
    Object.defineProperty(this, STORAGE_ERROR_BRAND, { value: true });
  }

  /**
   * True for any StorageError, including one from another copy of this package.
   * With `code`, also checks the code.
   */
  static isInstance(value: unknown, code?: StorageErrorCode): value is StorageError {
    if (typeof value !== "object" || value === null) return false;
    if ((value as Record<symbol, unknown>)[STORAGE_ERROR_BRAND] !== true) return false;
    return code === undefined || (value as StorageError).code === code;
  }
}

/** A key that breaks the key rules. Nothing was read or written. */
export class InvalidKeyError extends StorageError {
  /** The offending key, for diagnostics. Keys are paths, never secret values. */
  readonly key: string;

  constructor(key: string, reason: string, options: StorageErrorOptions = {}) {
    super(StorageErrorCode.INVALID_KEY, `invalid key ${JSON.stringify(truncate(key))}: ${reason}`, options);
    this.name = "InvalidKeyError";
    this.key = key;
  }
}

/** A value larger than the configured maximum. Nothing was written. */
export class ValueTooLargeError extends StorageError {
  /** The size of the rejected value in bytes. */
  readonly size: number;
  /** The configured maximum in bytes. */
  readonly limit: number;

  constructor(size: number, limit: number, options: StorageErrorOptions = {}) {
    super(StorageErrorCode.VALUE_TOO_LARGE, `value of ${size} bytes exceeds the limit of ${limit} bytes`, options);
    this.name = "ValueTooLargeError";
    this.size = size;
    this.limit = limit;
  }
}

function truncate(key: string): string {
  return key.length > 80 ? `${key.slice(0, 80)}…` : key;
}
