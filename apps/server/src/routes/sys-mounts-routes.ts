import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { VaultError, badRequest, notFound } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import { bodyObject, field } from "../kv/kv-input.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { mountPath, noMountAt, type Mount, type MountTable } from "../mounts/mount-table.js";
import type { EgideContext } from "../egide-context.js";

/** What the mount routes use of the server context. */
export type MountRoutesContext = Pick<EgideContext, "mutate" | "hasMountAccess">;

/** The plugin version Egide reports for its built-in KV engine. */
export const KV_PLUGIN_VERSION = "v0.1.0+builtin.egide";

/** Vault's system default for lease TTLs (32 days), reported by the tune endpoint. */
const SYSTEM_DEFAULT_LEASE_TTL = 2_764_800;

/** A mount as `GET /v1/sys/mounts` describes it. */
export interface MountInfo {
  accessor: string;
  config: { default_lease_ttl: number; force_no_cache: boolean; max_lease_ttl: number };
  deprecation_status: "supported";
  description: string;
  external_entropy_access: boolean;
  local: boolean;
  options: { version: string };
  plugin_version: string;
  running_plugin_version: string;
  running_sha256: string;
  seal_wrap: boolean;
  type: string;
  uuid: string;
}

/** The Vault description of a mount. */
export function mountInfo(mount: Mount): MountInfo {
  return {
    accessor: mount.accessor,
    config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
    deprecation_status: "supported",
    description: mount.description,
    external_entropy_access: false,
    local: mount.local,
    options: { version: mount.options.version },
    plugin_version: "",
    running_plugin_version: KV_PLUGIN_VERSION,
    running_sha256: "",
    seal_wrap: mount.seal_wrap,
    type: mount.type,
    uuid: mount.uuid,
  };
}

/**
 * Registers Vault's `/v1/sys/mounts` API over `mounts`:
 *
 * - `GET /v1/sys/mounts` (`read` on `sys/mounts`): every mount by path, in `data` and, as
 *   Vault also does, at the top level of the body;
 * - `GET /v1/sys/mounts/:path` (`read`): one mount's description (400 when none matches);
 * - `POST|PUT /v1/sys/mounts/:path` (`update`; Vault has no existence check there, so never
 *   `create`) with `{type, options, description}`: mounts KV version 1 or 2 (`kv` is
 *   version 1 unless `options.version` is "2", as in Vault; `kv-v1`, `kv-v2`); 204;
 * - `DELETE /v1/sys/mounts/:path` (`delete`): unmounts and deletes the mount's data; 204,
 *   also when nothing was mounted there;
 * - `GET|POST /v1/sys/mounts/:path/tune`: the tune view (description, options with the KV
 *   version, lease TTLs) and description changes (a version change is refused: see
 *   `MountTable.tune`);
 * - `GET /v1/sys/internal/ui/mounts/:path`: the mount of a path, which the `vault kv` CLI
 *   asks first to learn the KV version; only for a token whose policies grant something on
 *   that mount (Vault's `hasMountAccess`), 403 otherwise whether or not it exists.
 *
 * A mount path's canonical form has no trailing slash in the request path
 * (`sys/mounts/team/` is `sys/mounts/team`): the request pipeline applies it before the
 * capability check, and the handlers act on exactly the path that was checked.
 */
export function registerMountRoutes(app: FastifyInstance, ctx: MountRoutesContext, mounts: MountTable): void {
  // No list requests here (405 from the pipeline, after the list check).
  app.get("/v1/sys/mounts", { config: { vault: { template: "sys/mounts", access: "acl" } } }, async (request) =>
    listMounts(request, mounts),
  );

  const spec: VaultRouteSpec = { template: "sys/mounts/:path", access: "acl", canonical: withoutTrailingSlash };

  app.get("/v1/sys/mounts/*", { config: { vault: spec } }, async (request, reply) => {
    const raw = mountPathOf(request);
    if (raw === "") return listMounts(request, mounts);
    const tunePath = tuneTarget(raw);
    if (tunePath !== null) {
      const mount = await mounts.get(tunePath);
      if (mount === null) throw badRequest(`cannot fetch sysview for path "${mountPath(tunePath)}"`);
      return reply.send(
        vaultResponse(request, {
          default_lease_ttl: SYSTEM_DEFAULT_LEASE_TTL,
          description: mount.description,
          force_no_cache: false,
          max_lease_ttl: SYSTEM_DEFAULT_LEASE_TTL,
          options: { version: mount.options.version },
        }),
      );
    }
    // Exactly the mount named: `sys/mounts/team/x` is not a way to read `team/` (the check
    // was made on `sys/mounts/team/x`, so it must not describe another mount).
    const mount = await mounts.get(raw);
    if (mount === null) throw noMountAt(raw);
    return reply.send(vaultResponse(request, mountInfo(mount)));
  });

  app.route({
    method: ["POST", "PUT"],
    url: "/v1/sys/mounts/*",
    config: { vault: spec },
    handler: async (request, reply) => {
      const raw = mountPathOf(request);
      if (raw === "") throw badRequest("a mount path is required");
      const body = bodyObject(request.body);
      const tunePath = tuneTarget(raw);
      try {
        if (tunePath !== null) {
          await ctx.mutate(request, 204, (tx) =>
            mounts.tune(tx, tunePath, { description: field(body, "description"), options: field(body, "options") }),
          );
        } else {
          await ctx.mutate(request, 204, (tx) =>
            mounts.enable(tx, raw, {
              type: field(body, "type"),
              options: field(body, "options"),
              description: field(body, "description"),
              local: field(body, "local"),
              seal_wrap: field(body, "seal_wrap"),
            }),
          );
        }
      } finally {
        mounts.invalidate();
      }
      return noContent(reply);
    },
  });

  app.delete("/v1/sys/mounts/*", { config: { vault: spec } }, async (request, reply) => {
    const raw = mountPathOf(request);
    if (raw === "") throw badRequest("a mount path is required");
    try {
      await ctx.mutate(request, 204, (tx) => mounts.disable(tx, raw));
    } finally {
      mounts.invalidate();
    }
    return noContent(reply);
  });

  // The vault CLI's KV preflight. Another module may have registered it already.
  if (!app.hasRoute({ method: "GET", url: "/v1/sys/internal/ui/mounts/*" })) {
    const preflight: VaultRouteSpec = { template: "sys/internal/ui/mounts/:path", access: "token", canonical: withoutTrailingSlash };
    app.get("/v1/sys/internal/ui/mounts/*", { config: { vault: preflight } }, async (request, reply) => {
      const path = request.egide.path.slice("sys/internal/ui/mounts/".length);
      if (path === "" || request.egide.path === "sys/internal/ui/mounts") throw badRequest("path not set");
      const match = await mounts.find(path);
      // Vault answers 403 both when no mount matches and when the token may not reach the
      // mount, so that the endpoint cannot enumerate mounts.
      if (match === null || !(await ctx.hasMountAccess(request, match.mount.path))) {
        throw new VaultError(
          403,
          `preflight capability check returned 403, please ensure client's policies grant access to path "${mountPath(path)}"`,
        );
      }
      return reply.send(vaultResponse(request, { ...mountInfo(match.mount), path: match.mount.path }));
    });
  }
}

/** The mount path part of a canonical `sys/mounts/<path>` request ("" for `sys/mounts`). */
function mountPathOf(request: FastifyRequest): string {
  const path = request.egide.path;
  if (path === "sys/mounts") return "";
  // The pipeline only lets paths under the route's template through; anything else is a bug.
  if (!path.startsWith("sys/mounts/")) throw notFound();
  return path.slice("sys/mounts/".length);
}

/** A mount path's canonical request form: no trailing slash (`sys/mounts/team/` → `sys/mounts/team`). */
function withoutTrailingSlash(path: string): string {
  return path.endsWith("/") ? path.slice(0, -1) : path;
}

async function listMounts(request: FastifyRequest, mounts: MountTable): Promise<Record<string, unknown>> {
  const data: Record<string, MountInfo> = {};
  for (const mount of await mounts.list()) data[mount.path] = mountInfo(mount);
  // Vault repeats the mounts at the top level of the body (older clients read them there).
  return { ...data, ...vaultResponse(request, data) };
}

/** The mount path of a `<path>/tune` URL, or null when it is not one. */
function tuneTarget(raw: string): string | null {
  const trimmed = raw.endsWith("/") ? raw.slice(0, -1) : raw;
  if (!trimmed.endsWith("/tune")) return null;
  const path = trimmed.slice(0, -"/tune".length);
  return path === "" ? null : path;
}

function noContent(reply: FastifyReply): FastifyReply {
  return reply.code(204).send();
}
