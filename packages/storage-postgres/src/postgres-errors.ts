import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { DeadlineExceeded } from "./client-lease.js";
import { POSTGRES_TYPE } from "./postgres-type.js";

// SQLSTATE classes and codes that mean "the server or the connection went away".
const CONNECTION_STATES = new Set(["57P01", "57P02", "57P03", "53300", "08000", "08001", "08003", "08004", "08006", "08007", "08P01"]);
const SOCKET_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * Turns whatever `pg` (or our own code) threw into a {@link StorageError}. StorageErrors pass
 * through. Messages carry the driver's message but never a parameter value.
 */
export function toStorageError(error: unknown, operation: string): StorageError {
  if (StorageError.isInstance(error)) return error;
  const code = String((error as { code?: unknown } | null)?.code ?? "");
  const text = error instanceof Error ? error.message : String(error);
  const message = `${operation} failed: ${text}${code && /^[0-9A-Z]{5}$/.test(code) ? ` (SQLSTATE ${code})` : ""}`;
  const options = { backend: POSTGRES_TYPE, cause: error };
  if (code === "40001" || code === "40P01") return new StorageError(StorageErrorCode.CONFLICT, message, options);
  if (code === "57014") return new StorageError(StorageErrorCode.TIMEOUT, message, options);
  if (code === "25006") return new StorageError(StorageErrorCode.READ_ONLY, message, options);
  if (code === "XX001" || code === "XX002") return new StorageError(StorageErrorCode.CORRUPT, message, options);
  if (code === "53100" || code === "53200") return new StorageError(StorageErrorCode.UNAVAILABLE, message, options);
  if (isConnectionFailure(error)) return new StorageError(StorageErrorCode.UNAVAILABLE, message, options);
  // pg's own connect timeouts: the server did not answer in time.
  if (/timeout expired|connection timeout|timeout exceeded when trying to connect/i.test(text)) {
    return new StorageError(StorageErrorCode.UNAVAILABLE, message, options);
  }
  return new StorageError(StorageErrorCode.INTERNAL, message, options);
}

/** Whether an error means the connection (or the server) is gone, rather than a bad query. */
export function isConnectionFailure(error: unknown): boolean {
  const code = String((error as { code?: unknown } | null)?.code ?? "");
  if (CONNECTION_STATES.has(code) || SOCKET_CODES.has(code)) return true;
  const text = error instanceof Error ? error.message : "";
  return /Connection terminated unexpectedly|Connection terminated$|Client has encountered a connection error|Client was closed|not queryable|terminating connection/i.test(
    text,
  );
}

/**
 * A connection that died under a call (a restarted server, a terminated backend), as opposed
 * to a missed deadline (the server is slow or gone: trying again would only wait longer).
 */
export function isRetryableConnectionLoss(error: unknown): boolean {
  return (
    StorageError.isInstance(error, StorageErrorCode.UNAVAILABLE) &&
    error.retryable &&
    !(error instanceof DeadlineExceeded) &&
    isConnectionFailure(error.cause)
  );
}
