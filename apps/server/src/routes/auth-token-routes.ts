import { parseDuration } from "@egide/storage-core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { TokenEntry, TokenStore } from "../auth/token-store.js";
import type { EgideContext } from "../egide-context.js";
import { VaultError, badRequest, permissionDenied } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";

/** Token TTL limits (`default_lease_ttl`, `max_lease_ttl`). */
export interface TokenRouteOptions {
  tokens: TokenStore;
  defaultTtlMs: number;
  maxTtlMs: number;
}

/**
 * Vault's token auth method: `POST /v1/auth/token/create`, `GET /v1/auth/token/lookup-self`,
 * `POST /v1/auth/token/lookup`, `POST /v1/auth/token/revoke`, `POST /v1/auth/token/revoke-self`,
 * `POST /v1/auth/token/renew-self`, with Vault's response shapes (`auth` block on create and
 * renew, `data` on lookups). A non-root caller can only give a new token policies it has.
 */
export function registerTokenRoutes(app: FastifyInstance, ctx: EgideContext, options: TokenRouteOptions): void {
  const { tokens } = options;

  const create = async (request: FastifyRequest) => {
    ctx.describe(request, "update", "auth/token/create");
    const { capabilities, caller } = await ctx.capabilities(request, "auth/token/create");
    if (capabilities.has("deny") || !(capabilities.has("update") || capabilities.has("create"))) throw permissionDenied();
    const body = (request.body ?? {}) as Record<string, unknown>;
    const isRoot = caller.policies.includes("root");
    let policies = stringList(body.policies, "policies") ?? caller.policies.filter((p) => p !== "root");
    if (body.no_default_policy !== true && !policies.includes("default") && !policies.includes("root")) policies = [...policies, "default"];
    if (!isRoot && !capabilities.has("sudo")) {
      const extra = policies.filter((p) => p !== "default" && !caller.policies.includes(p));
      if (extra.length > 0) throw badRequest(`child policies must be subset of parent: ${extra.join(", ")} not held by the caller`);
    }
    if (policies.includes("root") && !isRoot) throw permissionDenied();
    const ttlMs = body.ttl === undefined || body.ttl === "" ? options.defaultTtlMs : duration(body.ttl, "ttl");
    const explicitMaxMs = body.explicit_max_ttl === undefined || body.explicit_max_ttl === "" ? 0 : duration(body.explicit_max_ttl, "explicit_max_ttl");
    if (ttlMs > options.maxTtlMs) throw badRequest(`ttl must not exceed the server's max_lease_ttl (${options.maxTtlMs / 1000}s)`);
    const meta = body.meta === undefined || body.meta === null ? {} : stringMap(body.meta, "meta");
    const displayName = typeof body.display_name === "string" && body.display_name !== "" ? `token-${body.display_name}` : "token";
    if (body.no_parent === true && !isRoot && !capabilities.has("sudo")) throw badRequest("root or sudo privileges required to create orphan token");
    const orphan = body.no_parent === true;
    const { token, entry } = await ctx.mutate(request, 200, (tx) =>
      tokens.create(tx, {
        policies,
        displayName,
        meta,
        ttlMs: policies.includes("root") && body.ttl === undefined ? 0 : Math.min(ttlMs, explicitMaxMs || ttlMs),
        maxTtlMs: explicitMaxMs,
        renewable: body.renewable !== false,
        parentAccessor: orphan ? null : caller.accessor,
      }),
    );
    return vaultResponse(request, null, { auth: authBlock(token, entry) });
  };
  app.post("/v1/auth/token/create", create);
  app.put("/v1/auth/token/create", create);

  app.get("/v1/auth/token/lookup-self", async (request) => {
    ctx.describe(request, "read", "auth/token/lookup-self");
    await ctx.authorize(request, "auth/token/lookup-self", "read");
    const { entry, token } = await ctx.authenticate(request);
    return vaultResponse(request, lookupData(entry, token));
  });

  const lookup = async (request: FastifyRequest) => {
    ctx.describe(request, "update", "auth/token/lookup");
    await ctx.authorize(request, "auth/token/lookup", "update");
    const token = tokenField(request);
    const entry = await tokens.lookup(token);
    if (entry === null) throw new VaultError(403, "bad token");
    // Vault shows the token itself only to the token's own lookup-self; here it is omitted.
    return vaultResponse(request, lookupData(entry, undefined));
  };
  app.post("/v1/auth/token/lookup", lookup);

  const revoke = async (request: FastifyRequest, reply: FastifyReply) => {
    ctx.describe(request, "update", "auth/token/revoke");
    await ctx.authorize(request, "auth/token/revoke", "update");
    const token = tokenField(request);
    await ctx.mutate(request, 204, (tx) => tokens.revoke(tx, token));
    return reply.code(204).send();
  };
  app.post("/v1/auth/token/revoke", revoke);
  app.put("/v1/auth/token/revoke", revoke);

  const revokeSelf = async (request: FastifyRequest, reply: FastifyReply) => {
    ctx.describe(request, "update", "auth/token/revoke-self");
    await ctx.authorize(request, "auth/token/revoke-self", "update");
    const { token } = await ctx.authenticate(request);
    await ctx.mutate(request, 204, (tx) => tokens.revoke(tx, token));
    return reply.code(204).send();
  };
  app.post("/v1/auth/token/revoke-self", revokeSelf);
  app.put("/v1/auth/token/revoke-self", revokeSelf);

  const renewSelf = async (request: FastifyRequest) => {
    ctx.describe(request, "update", "auth/token/renew-self");
    await ctx.authorize(request, "auth/token/renew-self", "update");
    const { token, entry } = await ctx.authenticate(request);
    const body = (request.body ?? {}) as Record<string, unknown>;
    const increment = body.increment === undefined || body.increment === "" ? undefined : duration(body.increment, "increment");
    if (!entry.renewable) throw badRequest("token is not renewable");
    const renewed = await ctx.mutate(request, 200, (tx) => tokens.renew(tx, token, increment, options.maxTtlMs));
    if (renewed === null) throw permissionDenied();
    return vaultResponse(request, null, { auth: authBlock(token, renewed) });
  };
  app.post("/v1/auth/token/renew-self", renewSelf);
  app.put("/v1/auth/token/renew-self", renewSelf);
}

function authBlock(token: string, entry: TokenEntry) {
  return {
    client_token: token,
    accessor: entry.accessor,
    policies: entry.policies,
    token_policies: entry.policies,
    metadata: entry.meta,
    lease_duration: ttlSeconds(entry),
    renewable: entry.renewable,
    entity_id: "",
    token_type: "service",
    orphan: entry.parentAccessor === null,
    mfa_requirement: null,
    num_uses: 0,
  };
}

function lookupData(entry: TokenEntry, token: string | undefined) {
  return {
    accessor: entry.accessor,
    creation_time: Math.floor(entry.createdAt / 1000),
    creation_ttl: Math.floor(entry.creationTtlMs / 1000),
    display_name: entry.displayName,
    entity_id: "",
    expire_time: entry.expiresAt === null ? null : new Date(entry.expiresAt).toISOString(),
    explicit_max_ttl: entry.maxExpiresAt === null ? 0 : Math.floor((entry.maxExpiresAt - entry.createdAt) / 1000),
    ...(token === undefined ? {} : { id: token }),
    issue_time: new Date(entry.createdAt).toISOString(),
    meta: Object.keys(entry.meta).length > 0 ? entry.meta : null,
    num_uses: 0,
    orphan: entry.parentAccessor === null,
    path: entry.policies.includes("root") && entry.parentAccessor === null ? "auth/token/root" : "auth/token/create",
    policies: entry.policies,
    renewable: entry.renewable,
    ttl: ttlSeconds(entry),
    type: "service",
  };
}

function ttlSeconds(entry: TokenEntry): number {
  return entry.expiresAt === null ? 0 : Math.max(0, Math.floor((entry.expiresAt - Date.now()) / 1000));
}

function tokenField(request: FastifyRequest): string {
  const token = ((request.body ?? {}) as Record<string, unknown>).token;
  if (typeof token !== "string" || token === "") throw badRequest("missing token");
  return token;
}

function duration(value: unknown, name: string): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value * 1000;
  if (typeof value === "string") {
    try {
      return /^\d+$/.test(value) ? Number(value) * 1000 : parseDuration(value, name);
    } catch {
      throw badRequest(`${name} must be a duration such as "1h" or a number of seconds`);
    }
  }
  throw badRequest(`${name} must be a duration such as "1h" or a number of seconds`);
}

function stringList(value: unknown, name: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = typeof value === "string" ? value.split(",") : value;
  if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) throw badRequest(`${name} must be a list of strings`);
  return list.map((v) => v.trim().toLowerCase()).filter((v) => v !== "");
}

function stringMap(value: unknown, name: string): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw badRequest(`${name} must be an object of strings`);
  }
  return value as Record<string, string>;
}
