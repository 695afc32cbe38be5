import { parseDuration } from "@egide/storage-core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { TokenEntry, TokenStore } from "../auth/token-store.js";
import type { EgideContext } from "../egide-context.js";
import type { RequestSession } from "../audit/request-state.js";
import { VaultError, badRequest, permissionDenied } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { bodyObject, parseBoolean } from "../kv/kv-input.js";
import { canonicalPolicyName } from "../policy/policy.js";

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
  const route = (path: string): { config: { vault: VaultRouteSpec } } => ({
    config: { vault: { template: path, access: "acl", operation: "update" } },
  });

  // Vault's token store: creating a token needs `update` on auth/token/create (never `create`
  // alone); orphans and policies the caller does not hold need sudo (or root).
  const create = async (request: FastifyRequest) => {
    const session = sessionOf(request);
    const { caller, isRoot, sudo } = session;
    const body = bodyObject(request.body);
    let policies = policyList(body.policies) ?? caller.policies.filter((p) => p !== "root");
    const noDefaultPolicy = flag(body, "no_default_policy");
    if (!noDefaultPolicy && !policies.includes("default") && !policies.includes("root")) policies = [...policies, "default"];
    if (!isRoot && !sudo) {
      const extra = policies.filter((p) => p !== "default" && !caller.policies.includes(p));
      if (extra.length > 0) throw badRequest(`child policies must be subset of parent: ${extra.join(", ")} not held by the caller`);
    }
    if (policies.includes("root") && !isRoot) throw permissionDenied();
    // A TTL of 0 (or none) is the default TTL, never "forever"; explicit_max_ttl caps it, and
    // every renewal (stored as the token's maxExpiresAt).
    const requestedMs = body.ttl === undefined || body.ttl === null || body.ttl === "" ? 0 : duration(body.ttl, "ttl");
    const explicitMaxMs =
      body.explicit_max_ttl === undefined || body.explicit_max_ttl === null || body.explicit_max_ttl === ""
        ? 0
        : duration(body.explicit_max_ttl, "explicit_max_ttl");
    if (requestedMs > options.maxTtlMs) throw badRequest(`ttl must not exceed the server's max_lease_ttl (${options.maxTtlMs / 1000}s)`);
    if (explicitMaxMs > options.maxTtlMs)
      throw badRequest(`explicit_max_ttl must not exceed the server's max_lease_ttl (${options.maxTtlMs / 1000}s)`);
    const ttlMs = tokenTtlMs(requestedMs, explicitMaxMs, options.defaultTtlMs);
    const meta = body.meta === undefined || body.meta === null ? {} : tokenMeta(body.meta);
    const displayName = tokenDisplayName(body.display_name);
    const orphan = flag(body, "no_parent");
    if (orphan && !isRoot && !sudo) throw badRequest("root or sudo privileges required to create orphan token");
    const { token, entry } = await ctx.mutate(request, 200, (tx) =>
      tokens.create(tx, {
        policies,
        displayName,
        meta,
        ttlMs,
        maxTtlMs: explicitMaxMs,
        renewable: body.renewable === undefined ? true : flag(body, "renewable"),
        parentAccessor: orphan ? null : caller.accessor,
      }),
    );
    return vaultResponse(request, null, { auth: authBlock(token, entry) });
  };
  app.post("/v1/auth/token/create", route("auth/token/create"), create);
  app.put("/v1/auth/token/create", route("auth/token/create"), create);

  app.get("/v1/auth/token/lookup-self", { config: { vault: { template: "auth/token/lookup-self", access: "acl" } } }, async (request) => {
    const { entry, token } = sessionOf(request);
    return vaultResponse(request, lookupData(entry, token));
  });

  const lookup = async (request: FastifyRequest) => {
    const token = tokenField(request);
    const entry = await tokens.lookup(token);
    if (entry === null) throw new VaultError(403, "bad token");
    // Vault shows the token itself only to the token's own lookup-self; here it is omitted.
    return vaultResponse(request, lookupData(entry, undefined));
  };
  app.post("/v1/auth/token/lookup", route("auth/token/lookup"), lookup);

  const revoke = async (request: FastifyRequest, reply: FastifyReply) => {
    const token = tokenField(request);
    await ctx.mutate(request, 204, (tx) => tokens.revoke(tx, token));
    return reply.code(204).send();
  };
  app.post("/v1/auth/token/revoke", route("auth/token/revoke"), revoke);
  app.put("/v1/auth/token/revoke", route("auth/token/revoke"), revoke);

  const revokeSelf = async (request: FastifyRequest, reply: FastifyReply) => {
    const { token } = sessionOf(request);
    await ctx.mutate(request, 204, (tx) => tokens.revoke(tx, token));
    return reply.code(204).send();
  };
  app.post("/v1/auth/token/revoke-self", route("auth/token/revoke-self"), revokeSelf);
  app.put("/v1/auth/token/revoke-self", route("auth/token/revoke-self"), revokeSelf);

  const renewSelf = async (request: FastifyRequest) => {
    const { token, entry } = sessionOf(request);
    const body = bodyObject(request.body);
    const increment = body.increment === undefined || body.increment === "" ? undefined : duration(body.increment, "increment");
    if (!entry.renewable) throw badRequest("token is not renewable");
    const renewed = await ctx.mutate(request, 200, (tx) => tokens.renew(tx, token, increment, options.maxTtlMs));
    if (renewed === null) throw permissionDenied();
    return vaultResponse(request, null, { auth: authBlock(token, renewed) });
  };
  app.post("/v1/auth/token/renew-self", route("auth/token/renew-self"), renewSelf);
  app.put("/v1/auth/token/renew-self", route("auth/token/renew-self"), renewSelf);
}

/**
 * The TTL a new token gets: the requested one, or the default when 0 or absent (a TTL of 0
 * never means "forever"), capped by `explicit_max_ttl` when one is given.
 */
export function tokenTtlMs(requestedMs: number, explicitMaxMs: number, defaultTtlMs: number): number {
  const ttl = requestedMs > 0 ? requestedMs : defaultTtlMs;
  return explicitMaxMs > 0 ? Math.min(ttl, explicitMaxMs) : ttl;
}

/** The longest `display_name` accepted: it goes into every audit row of the token. */
export const MAX_DISPLAY_NAME_LENGTH = 128;
/** Bounds of a token's `meta`, stored with the token and read on every request it makes. */
export const MAX_META_KEYS = 64;
export const MAX_META_KEY_LENGTH = 128;
export const MAX_META_VALUE_LENGTH = 1024;

// The display name as stored: "token-<name>", the name bounded (a 400 past the bound, never
// truncated silently) and free of control characters.
function tokenDisplayName(value: unknown): string {
  if (value === undefined || value === null || value === "") return "token";
  if (typeof value !== "string") throw badRequest("display_name must be a string");
  if (value.length > MAX_DISPLAY_NAME_LENGTH) throw badRequest(`display_name is longer than ${MAX_DISPLAY_NAME_LENGTH} characters`);
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) throw badRequest("display_name must not contain control characters");
  }
  return `token-${value}`;
}

function tokenMeta(value: unknown): Record<string, string> {
  const meta = stringMap(value, "meta");
  const entries = Object.entries(meta);
  if (entries.length > MAX_META_KEYS) throw badRequest(`meta holds more than ${MAX_META_KEYS} keys`);
  for (const [key, text] of entries) {
    if (key.length > MAX_META_KEY_LENGTH) throw badRequest(`meta keys are at most ${MAX_META_KEY_LENGTH} characters`);
    if (text.length > MAX_META_VALUE_LENGTH) throw badRequest(`meta values are at most ${MAX_META_VALUE_LENGTH} characters`);
  }
  return meta;
}

/** A boolean field as Vault's `TypeBool` reads it ("false" is false, not ignored); absent is false. */
function flag(body: Record<string, unknown>, name: string): boolean {
  return body[name] === undefined ? false : parseBoolean(body[name], name);
}

/** The authenticated session of a request the pipeline let through. */
function sessionOf(request: FastifyRequest): RequestSession {
  const session = request.egide.session;
  if (session === undefined) throw permissionDenied();
  return session;
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
  const token = bodyObject(request.body).token;
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

// Policy names as a list or a comma-separated string, each in its canonical form (ASCII lower
// case; anything that is not a valid name afterwards is refused, never trimmed into one).
function policyList(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = typeof value === "string" ? (value === "" ? [] : value.split(",")) : value;
  if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) throw badRequest("policies must be a list of strings");
  return list.map((name: string) => canonicalPolicyName(name));
}

function stringMap(value: unknown, name: string): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw badRequest(`${name} must be an object of strings`);
  }
  return value as Record<string, string>;
}
