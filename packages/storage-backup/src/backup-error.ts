/** Why a backup, a restore or a migration was refused. Every code means nothing was changed. */
export const BackupErrorCode = {
  /** The input is not an Egide backup (no `EGIDEBAK` magic). */
  NOT_A_BACKUP: "NOT_A_BACKUP",
  /** A format version or flag this code does not know. */
  UNSUPPORTED_FORMAT: "UNSUPPORTED_FORMAT",
  /** The backup was made by another installation (another master key). */
  FOREIGN_INSTALLATION: "FOREIGN_INSTALLATION",
  /** The header's MAC does not verify: the header was altered. */
  HEADER_TAMPERED: "HEADER_TAMPERED",
  /** A chunk failed authentication: damaged, reordered, dropped or from another file. */
  CHUNK_INVALID: "CHUNK_INVALID",
  /** The file ends before its final chunk. */
  TRUNCATED: "TRUNCATED",
  /** Bytes follow the final chunk. */
  TRAILING_DATA: "TRAILING_DATA",
  /** The authenticated content is malformed, or its record count or digest does not match. */
  RECORDS_INVALID: "RECORDS_INVALID",
  /** The target (restore) or destination (migration) already holds records; `force` overrides. */
  TARGET_NOT_EMPTY: "TARGET_NOT_EMPTY",
  /** A migration's verification pass found the two sides different. */
  VERIFICATION_FAILED: "VERIFICATION_FAILED",
  /** An argument out of range (chunk size, batch size, …). */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
} as const;

/** One of {@link BackupErrorCode}'s values. */
export type BackupErrorCode = (typeof BackupErrorCode)[keyof typeof BackupErrorCode];

const BACKUP_ERROR_BRAND = Symbol.for("@egide/storage-backup/BackupError");

/** The error every function of this package throws for a refused backup, restore or migration. */
export class BackupError extends Error {
  /** What went wrong, as a stable code. */
  readonly code: BackupErrorCode;

  constructor(code: BackupErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BackupError";
    this.code = code;
    Object.defineProperty(this, BACKUP_ERROR_BRAND, { value: true });
  }

  /** True for any BackupError (also from another copy of this package); with `code`, of that code. */
  static isInstance(value: unknown, code?: BackupErrorCode): value is BackupError {
    if (typeof value !== "object" || value === null) return false;
    if ((value as Record<symbol, unknown>)[BACKUP_ERROR_BRAND] !== true) return false;
    return code === undefined || (value as BackupError).code === code;
  }
}
