import type { TokenEntry } from "../auth/token-store.js";
import type { Caller, Operation } from "../server-context.js";

/** The authenticated side of a request: its token, the token's entry, and what the ACL granted. */
export interface RequestSession {
  /** The client token as sent (never logged, never audited). */
  readonly token: string;
  readonly entry: TokenEntry;
  readonly caller: Caller;
  /** Whether the caller holds `sudo` on the request's path (always for root). */
  sudo: boolean;
  /** Whether the caller is root (every check passes). */
  readonly isRoot: boolean;
}

/**
 * What the server knows about a request while handling it. Set once by the request pipeline
 * from the canonical request: the authorisation, the handler, the audit row and the metrics
 * all read these same values.
 */
export interface RequestState {
  /** Vault's operation, as authorised. */
  operation: Operation;
  /** The canonical Vault path without `/v1/`, as authorised. */
  path: string;
  /** The method for the audit row and metrics: `LIST` when the client sent one, else the HTTP method. */
  method: string;
  /** Who made it, once authenticated. */
  caller: Caller | undefined;
  /** The token and its grants, once authenticated. */
  session: RequestSession | undefined;
  /** Whether the audit row was already written (inside a mutation's transaction). */
  audited: boolean;
  /** Whether this request is exempt from auditing (health checks when so configured). */
  skipAudit: boolean;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Egide's per-request state (set by the request pipeline in onRequest). */
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
