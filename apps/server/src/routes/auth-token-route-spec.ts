import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isRoleName } from "../auth/token-role.js";
import type { TokenStore } from "../auth/token-store.js";
import type { EgideContext } from "../egide-context.js";
import { badRequest } from "../http/vault-error.js";
import type { VaultRouteSpec } from "../http/vault-route.js";

/** Token TTL limits (`default_lease_ttl`, `max_lease_ttl`). */
export interface TokenRouteOptions {
  tokens: TokenStore;
  defaultTtlMs: number;
  maxTtlMs: number;
}

/** What the token routes need from the server. */
export type TokenRoutesContext = Pick<EgideContext, "mutate" | "policies">;

/** The declaration of a token route whose operation is fixed (`update` unless said otherwise). */
export function tokenRoute(template: string, extra: Partial<VaultRouteSpec> = {}): { config: { vault: VaultRouteSpec } } {
  return { config: { vault: { template, access: "acl", operation: "update", ...extra } } };
}

/** Registers `handler` for POST and PUT (Vault takes both for writes). */
export function postPut(
  app: FastifyInstance,
  url: string,
  options: { config: { vault: VaultRouteSpec } },
  handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
): void {
  app.post(url, options, handler);
  app.put(url, options, handler);
}

/**
 * The `canonical` of a route ending in a role name: the path itself, once the name is one
 * (Vault's `GenericNameRegex`); a 400 otherwise, before the ACL check.
 */
export function roleNamePath(prefix: string): (path: string) => string {
  return (path) => {
    const name = path.slice(prefix.length).replace(/\/$/, "");
    if (!isRoleName(name)) throw badRequest("invalid role name");
    return path;
  };
}
