import type { Caller, Operation } from "../server-context.js";

/** What the server knows about a request while handling it, for its audit row. */
export interface RequestState {
  /** Vault's operation; set by the route (default from the HTTP method). */
  operation: Operation;
  /** The Vault path without `/v1/`. */
  path: string;
  /** Who made it, once authorised. */
  caller: Caller | undefined;
  /** Whether the audit row was already written (inside a mutation's transaction). */
  audited: boolean;
  /** Whether this request is exempt from auditing (health checks when so configured). */
  skipAudit: boolean;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Egide's per-request state (set in onRequest). */
    egide: RequestState;
  }
}

/** Vault's default operation for an HTTP method (LIST arrives as GET with `list=true`). */
export function operationOf(method: string, list: boolean): Operation {
  switch (method) {
    case "GET":
    case "HEAD":
      return list ? "list" : "read";
    case "DELETE":
      return "delete";
    case "PATCH":
      return "patch";
    default:
      return "update";
  }
}
