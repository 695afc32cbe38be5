import type { AuditEntry } from "@egide/storage-core";
import type { FastifyRequest } from "fastify";

/**
 * The audit row of a request: operation, path, source address, the caller's token accessor
 * (never the token), the request id, the outcome and a little metadata (status, method,
 * policies). Never a request or response body.
 */
export function auditEntry(request: FastifyRequest, success: boolean, status: number, errorMessage: string | null): AuditEntry {
  const state = request.egide;
  return {
    operation: state.operation,
    path: state.path,
    sourceIp: request.ip || null,
    userId: state.caller?.accessor ?? null,
    requestId: request.id,
    success,
    errorMessage,
    metadata: {
      status,
      method: request.headers["x-egide-original-method"] === "LIST" ? "LIST" : request.method,
      ...(state.caller ? { policies: state.caller.policies, display_name: state.caller.displayName } : {}),
    },
  };
}
