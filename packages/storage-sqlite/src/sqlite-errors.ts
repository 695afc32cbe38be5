import { StorageError, StorageErrorCode } from "@egide/storage-core";

/** The backend type, as configured and as named in error messages. */
export const SQLITE_TYPE = "sqlite";

/**
 * Turns whatever better-sqlite3 (or our own code) threw into a {@link StorageError}.
 * StorageErrors pass through unchanged, so validation errors keep their code.
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
  if (code === "SQLITE_FULL") return new StorageError(StorageErrorCode.UNAVAILABLE, message, { ...options, retryable: false });
  if (code.startsWith("SQLITE_IOERR") || code.startsWith("SQLITE_CANTOPEN") || code.startsWith("SQLITE_READONLY")) {
    return new StorageError(StorageErrorCode.UNAVAILABLE, message, options);
  }
  return new StorageError(StorageErrorCode.INTERNAL, message, options);
}
