import { StorageError } from "@egide/storage-core";
import { SealError } from "@egide/crypto-envelope";
import { VaultError } from "./vault-error.js";

/**
 * The status and `errors` array Vault would answer for `error`. Storage and seal errors get
 * their natural statuses; Fastify's own errors (bad JSON, body too large, unsupported media)
 * keep their 4xx status; anything else is a 500 with a generic message (the details go to the
 * server log, never to the client).
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
      case "TIMEOUT":
      case "CLOSED":
        return { status: 503, errors: ["storage is unavailable; try again"], internal: false };
      case "CONFLICT":
        return { status: 503, errors: ["too many concurrent changes to the same data; try again"], internal: false };
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
