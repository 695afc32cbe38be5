import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
} from "etcd3";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { ETCD_TYPE } from "./etcd-type.js";

/** A failed etcd request, as a storage error, and whether it surely had no effect. */
export interface EtcdFailure {
  readonly error: StorageError;
  /**
   * The request never reached a member (no connection could be made), so it certainly did not
   * take effect. Otherwise a write may or may not have been applied.
   */
  readonly notApplied: boolean;
}

/** What the classification needs to know besides the error. */
export interface FailureContext {
  /** What was being done, for the message ("get", "commit", …). */
  readonly what: string;
  /** The backend was closed: whatever failed, the answer is `CLOSED`. */
  readonly closed: boolean;
  readonly username: string | undefined;
  readonly prefix: string;
}

const NOT_REACHED = ["ECONNREFUSED", "No connection established", "etcdserver: no leader", "EHOSTUNREACH", "ENETUNREACH"];
const TLS_PROBLEMS = ["certificate", "CERTIFICATE", "SSL", "ssl3_", "handshake", "self signed", "self-signed", "unable to verify"];

/**
 * Turns an error of the etcd3 client (gRPC status errors cast by etcd3, or etcd's own messages)
 * into a {@link StorageError} with a code, so that no driver error leaves the adapter. The
 * driver's error is kept as `cause`; messages never hold the password.
 */
export function classifyEtcdError(error: unknown, context: FailureContext): EtcdFailure {
  const fail = (code: StorageErrorCode, message: string, retryable?: boolean, notApplied = false): EtcdFailure => ({
    error: new StorageError(code, message, { backend: ETCD_TYPE, cause: error, ...(retryable === undefined ? {} : { retryable }) }),
    notApplied,
  });
  if (StorageError.isInstance(error)) return { error, notApplied: false };
  if (context.closed || error instanceof ClientClosedError) return fail(StorageErrorCode.CLOSED, "backend is closed", false, true);
  const text = error instanceof Error ? error.message : String(error);
  const detail = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  const user = context.username === undefined ? "" : ` ${JSON.stringify(context.username)}`;

  if (error instanceof EtcdAuthenticationFailedError) {
    return fail(
      StorageErrorCode.UNAVAILABLE,
      `etcd refused the credentials of user${user} (authentication failed): check username and the password in password_env`,
      false,
      true,
    );
  }
  if (text.includes("user name is empty") || (error instanceof GRPCUnauthenticatedError && context.username === undefined)) {
    return fail(StorageErrorCode.UNAVAILABLE, "etcd requires authentication: set username and password_env", false, true);
  }
  if (text.includes("authentication is not enabled")) {
    return fail(
      StorageErrorCode.UNAVAILABLE,
      `username is set, but authentication is not enabled on the etcd cluster (${detail})`,
      false,
      true,
    );
  }
  if (error instanceof EtcdPermissionDeniedError || text.includes("permission denied")) {
    return fail(
      StorageErrorCode.UNAVAILABLE,
      `etcd user${user} is not allowed to ${context.what} under ${JSON.stringify(context.prefix)}: grant it a role with readwrite permission on that prefix`,
      false,
      true,
    );
  }
  if (error instanceof GRPCUnauthenticatedError || error instanceof EtcdInvalidAuthTokenError) {
    return fail(
      StorageErrorCode.UNAVAILABLE,
      `etcd rejected the authentication of user${user} during ${context.what}: ${detail}`,
      true,
      true,
    );
  }
  if (text.includes("required revision has been compacted")) {
    return fail(
      StorageErrorCode.CONFLICT,
      `${context.what}: the snapshot being read was compacted away by etcd; try again (and keep etcd's compaction retention above the longest read)`,
      true,
    );
  }
  if (text.includes("request is too large") || text.includes("larger than max")) {
    return fail(
      StorageErrorCode.VALUE_TOO_LARGE,
      `${context.what}: etcd refused the request as too large (its --max-request-bytes); write less in one transaction, or raise --max-request-bytes and max_request_bytes together`,
      false,
      true,
    );
  }
  if (text.includes("database space exceeded")) {
    return fail(
      StorageErrorCode.UNAVAILABLE,
      `${context.what}: etcd is out of space (NOSPACE alarm, --quota-backend-bytes reached): compact, defragment and disarm the alarm`,
      false,
    );
  }
  if (text.includes("too many operations in txn request")) {
    return fail(
      StorageErrorCode.INTERNAL,
      `${context.what}: etcd refused a transaction with too many operations; max_txn_ops must not exceed the server's --max-txn-ops`,
      false,
      true,
    );
  }
  if (TLS_PROBLEMS.some((needle) => text.includes(needle))) {
    return fail(
      StorageErrorCode.UNAVAILABLE,
      `${context.what}: TLS connection to etcd failed: ${detail} (check tls_ca_file, and tls_cert_file/tls_key_file when the members require a client certificate)`,
      false,
      true,
    );
  }
  if (error instanceof GRPCDeadlineExceededError) {
    return fail(StorageErrorCode.TIMEOUT, `${context.what}: etcd did not answer in time (${detail})`, true);
  }
  // A request etcd refuses as such is a defect here or a mismatch with the server, never worth a retry.
  if (
    [" INVALID_ARGUMENT", " FAILED_PRECONDITION", " OUT_OF_RANGE", " NOT_FOUND", " UNIMPLEMENTED"].some((needle) => text.includes(needle))
  ) {
    return fail(StorageErrorCode.INTERNAL, `${context.what}: etcd refused the request: ${detail}`, false);
  }
  // Everything else the network or the cluster can cause (unavailable, reset, cancelled, a
  // leader election, a server-side timeout, resource exhaustion) is transient.
  const transient = [" UNAVAILABLE", " CANCELLED", " UNKNOWN", " INTERNAL", " RESOURCE_EXHAUSTED", " ABORTED", "etcdserver: "];
  if (transient.some((needle) => text.includes(needle))) {
    const notApplied = NOT_REACHED.some((needle) => text.includes(needle));
    return fail(StorageErrorCode.UNAVAILABLE, `${context.what}: etcd unavailable: ${detail}`, true, notApplied);
  }
  return fail(StorageErrorCode.INTERNAL, `${context.what}: etcd request failed: ${detail}`, false);
}
