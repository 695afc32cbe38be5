import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { SQLITE_TYPE } from "./sqlite-type.js";

// Node's errors for a database file that cannot be created or looked at (a missing or
// unwritable directory, say): unavailable, as SQLITE_CANTOPEN is.
const FILE_ACCESS_CODES = new Set(["ENOENT", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "EROFS", "ELOOP", "ENAMETOOLONG", "EIO"]);
const FILE_SPACE_CODES = new Set(["ENOSPC", "EDQUOT"]);

/**
 * A database file (or its `-wal`, `-shm` or `-journal` file) that group or others may access
 * and whose permissions could not be restricted to its owner, usually because the process is
 * not its owner. The backend refuses to open such a database rather than keep its keys and
 * audit log readable by other local users. Trying again does not help: the operator has to
 * change the file's owner or mode.
 */
export class SqliteFilePermissionError extends StorageError {
  /** The file whose permissions are too wide. */
  readonly path: string;
  /** Its permission bits when it was found, e.g. `0o644`. */
  readonly mode: number;

  constructor(path: string, mode: number, cause?: unknown) {
    const reason = String((cause as { code?: unknown } | null)?.code ?? (cause instanceof Error ? cause.message : "error"));
    super(
      StorageErrorCode.UNAVAILABLE,
      `${path} is accessible by group or others (mode ${mode.toString(8).padStart(4, "0")}) and could not be restricted to its owner (${reason}); ` +
        `run "chmod go= ${path}" as the file's owner, or make the user Egide runs as its owner`,
      { backend: SQLITE_TYPE, cause, retryable: false },
    );
    this.name = "SqliteFilePermissionError";
    this.path = path;
    this.mode = mode;
  }
}

/**
 * Turns whatever better-sqlite3 (or our own code) threw into a {@link StorageError}.
 * StorageErrors pass through unchanged, so validation errors keep their code. Node's file-system
 * errors (from preparing the database file) become UNAVAILABLE, like SQLite's own CANTOPEN.
 */
export function toStorageError(error: unknown, operation: string): StorageError {
  if (StorageError.isInstance(error)) return error;
  const code = String((error as { code?: unknown } | null)?.code ?? "");
  const message = `${operation} failed: ${error instanceof Error ? error.message : String(error)}`;
  const options = { backend: SQLITE_TYPE, cause: error };
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new StorageError(StorageErrorCode.CONFLICT, message, options);
  }
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") {
    return new StorageError(StorageErrorCode.CORRUPT, message, options);
  }
  if (code === "SQLITE_FULL" || FILE_SPACE_CODES.has(code)) {
    return new StorageError(StorageErrorCode.UNAVAILABLE, message, { ...options, retryable: false });
  }
  if (
    code.startsWith("SQLITE_IOERR") ||
    code.startsWith("SQLITE_CANTOPEN") ||
    code.startsWith("SQLITE_READONLY") ||
    FILE_ACCESS_CODES.has(code)
  ) {
    return new StorageError(StorageErrorCode.UNAVAILABLE, message, options);
  }
  return new StorageError(StorageErrorCode.INTERNAL, message, options);
}
