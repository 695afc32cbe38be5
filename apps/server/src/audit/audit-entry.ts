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
    path: printablePath(state.path),
    sourceIp: request.ip || null,
    userId: state.caller?.accessor ?? null,
    requestId: request.id,
    success,
    errorMessage,
    metadata: {
      status,
      method: state.method,
      ...(state.caller ? { policies: state.caller.policies, display_name: state.caller.displayName } : {}),
    },
  };
}

// Control characters (a NUL in particular, which PostgreSQL text columns refuse) are written
// percent-encoded, so every path can be audited and the row still says what was asked for.
function printablePath(path: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matches control characters on purpose, to percent-encode them
  return path.replace(/[\u0000-\u001f\u007f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`);
}
