import type { FastifyInstance, FastifyRequest } from "fastify";
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
import { badRequest } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { bodyObject, field } from "../kv/kv-input.js";
import { type MountEntryFields, type MountEntryInfo, mountEntryInfo, mountListing, mountTuneInfo } from "./mount-entry-info.js";
import { changeMountTable, mountPathBelow, tuneTarget, withoutTrailingSlash } from "./mount-entry-request.js";

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
export type AuthMountInfo = MountEntryInfo<
  { default_lease_ttl: number; force_no_cache: boolean; max_lease_ttl: number; token_type: "default-service" },
  null
>;

/** An auth method's description, from its TTL limits (seconds; 0 is the server's). */
function authEntryInfo(entry: MountEntryFields, defaultTtl: number, maxTtl: number): AuthMountInfo {
  return mountEntryInfo(entry, {
    config: { default_lease_ttl: defaultTtl, force_no_cache: false, max_lease_ttl: maxTtl, token_type: "default-service" },
    options: null,
    runningPluginVersion: AUTH_PLUGIN_VERSION,
  });
}

/**
 * The built-in token method, always listed. Its accessor and uuid are fixed: it is not stored
 * in the auth mount table (it exists before any table does and can never change).
 */
const TOKEN_MOUNT_INFO: AuthMountInfo = authEntryInfo(
  {
    accessor: "auth_token_00000000",
    description: "token based credentials",
    local: false,
    seal_wrap: false,
    type: "token",
    uuid: "00000000-0000-0000-0000-000000000000",
  },
  0,
  0,
);

/** The Vault description of an enabled auth method. */
export function authMountInfo(mount: AuthMount): AuthMountInfo {
  return authEntryInfo(mount, mount.config.default_lease_ttl, mount.config.max_lease_ttl);
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
    const raw = mountPathBelow(request, "sys/auth");
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
      const raw = mountPathBelow(request, "sys/auth");
      if (raw === "") throw badRequest("a mount path is required");
      const body = bodyObject(request.body);
      const tunePath = tuneTarget(raw);
      return changeMountTable(ctx, request, reply, authMounts, (tx) =>
        tunePath !== null
          ? authMounts.tune(tx, tunePath, {
              description: field(body, "description"),
              default_lease_ttl: field(body, "default_lease_ttl"),
              max_lease_ttl: field(body, "max_lease_ttl"),
            })
          : authMounts.enable(
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
    },
  });

  app.delete("/v1/sys/auth/*", { config: { vault: spec } }, async (request, reply) => {
    const raw = mountPathBelow(request, "sys/auth");
    if (raw === "") throw badRequest("a mount path is required");
    return changeMountTable(ctx, request, reply, authMounts, (tx) =>
      authMounts.disable(tx, raw, async (inner, mount) => {
        await revokeIssuedTokens(inner, options.tokens, mount);
      }),
    );
  });
}

/** The tune view of an auth method: the mount entry's, with the token type its tokens get. */
function tuneData(description: string, defaultTtl: number, maxTtl: number) {
  return { ...mountTuneInfo(description, defaultTtl, maxTtl, null), token_type: "default-service" };
}

async function listAuth(request: FastifyRequest, mounts: AuthMountTable): Promise<Record<string, unknown>> {
  const data: Record<string, AuthMountInfo> = { [TOKEN_MOUNT_PATH]: TOKEN_MOUNT_INFO };
  for (const mount of await mounts.list()) data[mount.path] = authMountInfo(mount);
  return mountListing(request, data);
}
