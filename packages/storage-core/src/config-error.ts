/** Codes of {@link ConfigError}. */
export type ConfigErrorCode = "INVALID_CONFIG" | "UNKNOWN_BACKEND" | "BACKEND_NOT_INSTALLED" | "INCOMPATIBLE_BACKEND" | "STORAGE_NOT_FOUND";

const CONFIG_ERROR_BRAND = Symbol.for("@egide/storage-core/ConfigError");

/**
 * A configuration problem found before any storage is touched: a bad option value, an
 * unknown storage type, an adapter package that is not installed or built for another storage
 * contract version, or (for a storage to read from) a database that does not exist.
 */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  /** The option at fault, as written in the configuration file (`storage.sqlite.busy_timeout`). */
  readonly option: string | undefined;

  constructor(code: ConfigErrorCode, message: string, options: { option?: string; cause?: unknown } = {}) {
    super(options.option ? `${options.option}: ${message}` : message, { cause: options.cause });
    this.name = "ConfigError";
    this.code = code;
    this.option = options.option;
    Object.defineProperty(this, CONFIG_ERROR_BRAND, { value: true });
  }

  /** True for any ConfigError, including one from another copy of this package. */
  static isInstance(value: unknown): value is ConfigError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[CONFIG_ERROR_BRAND] === true;
  }
}
