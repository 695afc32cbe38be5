import type { FastifyRequest } from "fastify";
import type { RequestSession } from "../audit/request-state.js";
import type { TokenEntry } from "../auth/token-store.js";
import { explicitMaxTtlMs } from "../auth/token-store.js";
import { permissionDenied } from "../http/vault-error.js";

/**
 * Vault's `auth` block of a token creation or renewal. `lease_duration` is the TTL granted by
 * that operation, in whole seconds, never a remainder recomputed from the clock.
 */
export function authBlock(clientToken: string, entry: TokenEntry, grantedMs: number) {
  return {
    client_token: clientToken,
    accessor: entry.accessor,
    policies: entry.policies,
    token_policies: entry.policies,
    metadata: entry.meta,
    lease_duration: Math.floor(grantedMs / 1000),
    renewable: entry.renewable,
    entity_id: "",
    token_type: "service",
    orphan: entry.parentAccessor === null,
    mfa_requirement: null,
    num_uses: Math.max(0, entry.numUses ?? 0),
  };
}

/**
 * Vault's lookup data. `id` is the token for lookup and lookup-self, "" for lookup-accessor;
 * `ttl` is what remains, `creation_ttl` what was granted at creation.
 */
export function lookupData(entry: TokenEntry, id: string, now = Date.now()) {
  return {
    accessor: entry.accessor,
    creation_time: Math.floor(entry.createdAt / 1000),
    creation_ttl: Math.floor(entry.creationTtlMs / 1000),
    display_name: entry.displayName,
    entity_id: "",
    expire_time: entry.expiresAt === null ? null : new Date(entry.expiresAt).toISOString(),
    explicit_max_ttl: Math.floor(explicitMaxTtlMs(entry) / 1000),
    id,
    issue_time: new Date(entry.createdAt).toISOString(),
    ...(entry.lastRenewedAt === undefined
      ? {}
      : { last_renewal: new Date(entry.lastRenewedAt).toISOString(), last_renewal_time: Math.floor(entry.lastRenewedAt / 1000) }),
    meta: Object.keys(entry.meta).length > 0 ? entry.meta : null,
    num_uses: entry.numUses ?? 0,
    orphan: entry.parentAccessor === null,
    path: entry.path ?? (entry.policies.includes("root") && entry.parentAccessor === null ? "auth/token/root" : "auth/token/create"),
    ...(entry.periodMs ? { period: Math.floor(entry.periodMs / 1000) } : {}),
    policies: entry.policies,
    renewable: entry.renewable,
    ...(entry.role === undefined ? {} : { role: entry.role }),
    ttl: entry.expiresAt === null ? 0 : Math.max(0, Math.floor((entry.expiresAt - now) / 1000)),
    type: "service",
  };
}

/** The authenticated session of a request the pipeline let through. */
export function sessionOf(request: FastifyRequest): RequestSession {
  const session = request.egide.session;
  if (session === undefined) throw permissionDenied();
  return session;
}
