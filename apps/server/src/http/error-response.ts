import { StorageError } from "@egide/storage-core";
import { SealError } from "@egide/crypto-envelope";
import { VaultError } from "./vault-error.js";

/**
 * The status and `errors` array Vault would answer for `error`. Storage and seal errors get
 * their natural statuses; Fastify's own errors (bad JSON, body too large, unsupported media)
 * keep their 4xx status; anything else is a 500 with a generic message (the details go to the
 * server log, never to the client).
 *
 * A storage failure that is not the request's fault (the database down, slow, read-only, a full
 * disk) is a 503 whose message ends with the storage error's code, `(storage error UNAVAILABLE)`,
 * so that clients and operators can tell these apart without the driver's message, which may
 * name hosts, users, databases or files and is never shown.
 */
export function errorResponse(error: unknown): { status: number; errors: string[]; internal: boolean } {
  if (error instanceof VaultError) return { status: error.status, errors: error.errors, internal: false };
  if (StorageError.isInstance(error)) {
    switch (error.code) {
      case "SEALED":
        return { status: 503, errors: ["Vault is sealed"], internal: false };
      case "INVALID_KEY":
        return { status: 400, errors: [error.message.replace(/^[a-z]+: /, "")], internal: false };
      case "VALUE_TOO_LARGE":
        return { status: 413, errors: ["the value is too large for the storage backend"], internal: false };
      case "UNAVAILABLE":
        // Down, unreachable, a full disk, a commit whose outcome is unknown: the request may
        // succeed later. Which of these it was stays in the storage error's message, never shown.
        return { status: 503, errors: [storageMessage("storage is unavailable; try again later", error.code)], internal: false };
      case "TIMEOUT":
        return { status: 503, errors: [storageMessage("storage did not answer in time; try again", error.code)], internal: false };
      case "CLOSED":
        return { status: 503, errors: [storageMessage("storage is unavailable; try again", error.code)], internal: false };
      case "READ_ONLY":
        // A database that only accepts reads now (a replica, or a primary being failed over).
        return { status: 503, errors: [storageMessage("storage accepts no writes right now; try again", error.code)], internal: false };
      case "CONFLICT":
        return {
          status: 503,
          errors: [storageMessage("too many concurrent changes to the same data; try again", error.code)],
          internal: false,
        };
      default:
        return { status: 500, errors: ["internal error"], internal: true };
    }
  }
  if (SealError.isInstance(error)) {
    return { status: 400, errors: [error.message], internal: false };
  }
  const fastify = error as { statusCode?: number; code?: string; message?: string };
  if (typeof fastify.statusCode === "number" && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    if (fastify.code === "FST_ERR_CTP_BODY_TOO_LARGE") return { status: 413, errors: ["request body is too large"], internal: false };
    return { status: fastify.statusCode, errors: [fastify.message ?? "bad request"], internal: false };
  }
  return { status: 500, errors: ["internal error"], internal: true };
}

/** A client-facing storage message with its code, the part clients and operators can match on. */
function storageMessage(text: string, code: string): string {
  return `${text} (storage error ${code})`;
}

/**
 * The answer that replaces a response whose audit row could not be written (the request is
 * refused: nothing is answered without its row). Storage that is down, slow or full is a 503
 * naming the storage error's code, like {@link errorResponse}; anything else a 500.
 */
export function auditFailureResponse(error: unknown): { status: number; errors: string[] } {
  if (StorageError.isInstance(error) && errorResponse(error).status === 503) {
    return {
      status: 503,
      errors: [storageMessage("the audit log could not be written (storage unavailable); the request was refused", error.code)],
    };
  }
  return { status: 500, errors: ["the audit log could not be written; the request was refused"] };
}
