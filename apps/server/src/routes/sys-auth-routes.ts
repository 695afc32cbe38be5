import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { TokenStore } from "../auth/token-store.js";
import { AUTH_METHOD_BACKENDS } from "../auth-methods/auth-method-backends.js";
import {
  type AuthMount,
  type AuthMountTable,
  TOKEN_MOUNT_PATH,
  authMountPath,
  authMountStoragePrefix,
} from "../auth-methods/auth-mount-table.js";
import { type SystemTokenLimits, revokeIssuedTokens } from "../auth-methods/login-token.js";
import type { EgideContext } from "../egide-context.js";
import { badRequest, notFound } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { bodyObject, field } from "../kv/kv-input.js";

/** What the `sys/auth` routes use of the server context. */
export type SysAuthRoutesContext = Pick<EgideContext, "mutate">;

/** Options of {@link registerSysAuthRoutes}. */
export interface SysAuthRouteOptions {
  authMounts: AuthMountTable;
  tokens: TokenStore;
  limits: SystemTokenLimits;
}

/** The plugin version Egide reports for its built-in auth methods. */
export const AUTH_PLUGIN_VERSION = "v0.1.0+builtin.egide";

/** An auth method as `GET /v1/sys/auth` describes it. */
export interface AuthMountInfo {
  accessor: string;
  config: { default_lease_ttl: number; force_no_cache: boolean; max_lease_ttl: number; token_type: "default-service" };
  deprecation_status: "supported";
  description: string;
  external_entropy_access: boolean;
  local: boolean;
  options: null;
  plugin_version: string;
  running_plugin_version: string;
  running_sha256: string;
  seal_wrap: boolean;
  type: string;
  uuid: string;
}

/**
 * The built-in token method, always listed. Its accessor and uuid are fixed: it is not stored
 * in the auth mount table (it exists before any table does and can never change).
 */
const TOKEN_MOUNT_INFO: AuthMountInfo = {
  accessor: "auth_token_00000000",
  config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0, token_type: "default-service" },
  deprecation_status: "supported",
  description: "token based credentials",
  external_entropy_access: false,
  local: false,
  options: null,
  plugin_version: "",
  running_plugin_version: AUTH_PLUGIN_VERSION,
  running_sha256: "",
  seal_wrap: false,
  type: "token",
  uuid: "00000000-0000-0000-0000-000000000000",
};

/** The Vault description of an enabled auth method. */
export function authMountInfo(mount: AuthMount): AuthMountInfo {
  return {
    ...TOKEN_MOUNT_INFO,
    accessor: mount.accessor,
    config: { ...TOKEN_MOUNT_INFO.config, default_lease_ttl: mount.config.default_lease_ttl, max_lease_ttl: mount.config.max_lease_ttl },
    description: mount.description,
    local: mount.local,
    seal_wrap: mount.seal_wrap,
    type: mount.type,
    uuid: mount.uuid,
  };
}

/**
 * Vault's `/v1/sys/auth` API over the auth mount table:
 *
 * - `GET sys/auth` (`read`; no sudo, as in Vault): every method by path, `token/` included, in
 *   `data` and at the top level;
 * - `GET sys/auth/:path` (`read` + sudo): one method's description;
 * - `POST|PUT sys/auth/:path` (`update` + sudo) with `{type, description, config}`: enables
 *   `approle` or `userpass`; 204;
 * - `DELETE sys/auth/:path` (`delete` + sudo): revokes the tokens the method issued and deletes
 *   all its data, in one transaction; 204, also when nothing was enabled there; `token/` is a 400;
 * - `GET|POST sys/auth/:path/tune` (+ sudo): the TTL limits and description.
 *
 * Everything under `sys/auth/` needs sudo, as Vault's root paths (`auth/*`) say. A mount path's
 * canonical form has no trailing slash in the request path.
 */
export function registerSysAuthRoutes(app: FastifyInstance, ctx: SysAuthRoutesContext, options: SysAuthRouteOptions): void {
  const { authMounts, limits } = options;
  app.get("/v1/sys/auth", { config: { vault: { template: "sys/auth", access: "acl" } } }, async (request) => listAuth(request, authMounts));

  const spec: VaultRouteSpec = { template: "sys/auth/:path", access: "acl", sudo: true, canonical: withoutTrailingSlash };

  app.get("/v1/sys/auth/*", { config: { vault: spec } }, async (request, reply) => {
    const raw = authPathOf(request);
    if (raw === "") return listAuth(request, authMounts);
    const tunePath = tuneTarget(raw);
    if (tunePath !== null) {
      if (authMountPath(tunePath) === TOKEN_MOUNT_PATH) {
        return reply.send(
          vaultResponse(
            request,
            tuneData("token based credentials", Math.floor(limits.defaultTtlMs / 1000), Math.floor(limits.maxTtlMs / 1000)),
          ),
        );
      }
      const mount = await authMounts.get(tunePath);
      if (mount === null) throw badRequest(`cannot fetch sysview for path "auth/${authMountPath(tunePath)}"`);
      const effective = authMounts.effectiveLimits(mount, limits.defaultTtlMs);
      return reply.send(vaultResponse(request, tuneData(mount.description, effective.defaultTtl, effective.maxTtl)));
    }
    if (authMountPath(raw) === TOKEN_MOUNT_PATH) return reply.send(vaultResponse(request, TOKEN_MOUNT_INFO));
    const mount = await authMounts.get(raw);
    if (mount === null) throw badRequest(`No auth engine at auth/${authMountPath(raw)}`);
    return reply.send(vaultResponse(request, authMountInfo(mount)));
  });

  app.route({
    method: ["POST", "PUT"],
    url: "/v1/sys/auth/*",
    config: { vault: spec },
    handler: async (request, reply) => {
      const raw = authPathOf(request);
      if (raw === "") throw badRequest("a mount path is required");
      const body = bodyObject(request.body);
      const tunePath = tuneTarget(raw);
      try {
        if (tunePath !== null) {
          await ctx.mutate(request, 204, (tx) =>
            authMounts.tune(tx, tunePath, {
              description: field(body, "description"),
              default_lease_ttl: field(body, "default_lease_ttl"),
              max_lease_ttl: field(body, "max_lease_ttl"),
            }),
          );
        } else {
          await ctx.mutate(request, 204, (tx) =>
            authMounts.enable(
              tx,
              raw,
              {
                type: field(body, "type"),
                description: field(body, "description"),
                config: field(body, "config"),
                local: field(body, "local"),
                seal_wrap: field(body, "seal_wrap"),
              },
              async (inner, mount) => AUTH_METHOD_BACKENDS[mount.type].initialise?.(inner, authMountStoragePrefix(mount)),
            ),
          );
        }
      } finally {
        authMounts.invalidate();
      }
      return noContent(reply);
    },
  });

  app.delete("/v1/sys/auth/*", { config: { vault: spec } }, async (request, reply) => {
    const raw = authPathOf(request);
    if (raw === "") throw badRequest("a mount path is required");
    try {
      await ctx.mutate(request, 204, (tx) =>
        authMounts.disable(tx, raw, async (inner, mount) => {
          await revokeIssuedTokens(inner, options.tokens, mount);
        }),
      );
    } finally {
      authMounts.invalidate();
    }
    return noContent(reply);
  });
}

function tuneData(description: string, defaultTtl: number, maxTtl: number) {
  return {
    default_lease_ttl: defaultTtl,
    description,
    force_no_cache: false,
    max_lease_ttl: maxTtl,
    options: null,
    token_type: "default-service",
  };
}

async function listAuth(request: FastifyRequest, mounts: AuthMountTable): Promise<Record<string, unknown>> {
  const data: Record<string, AuthMountInfo> = { [TOKEN_MOUNT_PATH]: TOKEN_MOUNT_INFO };
  for (const mount of await mounts.list()) data[mount.path] = authMountInfo(mount);
  // Vault repeats the methods at the top level of the body (older clients read them there).
  return { ...data, ...vaultResponse(request, data) };
}

/** The mount path part of a canonical `sys/auth/<path>` request ("" for `sys/auth`). */
function authPathOf(request: FastifyRequest): string {
  const path = request.egide.path;
  if (path === "sys/auth") return "";
  if (!path.startsWith("sys/auth/")) throw notFound();
  return path.slice("sys/auth/".length);
}

function withoutTrailingSlash(path: string): string {
  return path.endsWith("/") ? path.slice(0, -1) : path;
}

/** The mount path of a `<path>/tune` URL, or null when it is not one. */
function tuneTarget(raw: string): string | null {
  if (!raw.endsWith("/tune")) return null;
  const path = raw.slice(0, -"/tune".length);
  return path === "" ? null : path;
}

function noContent(reply: FastifyReply): FastifyReply {
  return reply.code(204).send();
}
