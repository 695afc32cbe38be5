import type { FastifyInstance, FastifyRequest } from "fastify";
import { VaultError, badRequest } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import { bodyObject, field } from "../kv/kv-input.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { mountPath, noMountAt, type Mount, type MountTable } from "../mounts/mount-table.js";
import type { EgideContext } from "../egide-context.js";
import { type MountEntryInfo, mountEntryInfo, mountListing, mountTuneInfo } from "./mount-entry-info.js";
import { changeMountTable, mountPathBelow, tuneTarget, withoutTrailingSlash } from "./mount-entry-request.js";

/** What the mount routes use of the server context. */
export type MountRoutesContext = Pick<EgideContext, "mutate" | "hasMountAccess">;

/** The plugin version Egide reports for its built-in KV engine. */
export const KV_PLUGIN_VERSION = "v0.1.0+builtin.egide";

/** Vault's system default for lease TTLs (32 days), reported by the tune endpoint. */
const SYSTEM_DEFAULT_LEASE_TTL = 2_764_800;

/** A mount as `GET /v1/sys/mounts` describes it. */
export type MountInfo = MountEntryInfo<{ default_lease_ttl: number; force_no_cache: boolean; max_lease_ttl: number }, { version: string }>;

/** The Vault description of a mount. */
export function mountInfo(mount: Mount): MountInfo {
  return mountEntryInfo(mount, {
    config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
    options: { version: mount.options.version },
    runningPluginVersion: KV_PLUGIN_VERSION,
  });
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
    const raw = mountPathBelow(request, "sys/mounts");
    if (raw === "") return listMounts(request, mounts);
    const tunePath = tuneTarget(withoutTrailingSlash(raw));
    if (tunePath !== null) {
      const mount = await mounts.get(tunePath);
      if (mount === null) throw badRequest(`cannot fetch sysview for path "${mountPath(tunePath)}"`);
      const options = { version: mount.options.version };
      return reply.send(
        vaultResponse(request, mountTuneInfo(mount.description, SYSTEM_DEFAULT_LEASE_TTL, SYSTEM_DEFAULT_LEASE_TTL, options)),
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
      const raw = mountPathBelow(request, "sys/mounts");
      if (raw === "") throw badRequest("a mount path is required");
      const body = bodyObject(request.body);
      const tunePath = tuneTarget(withoutTrailingSlash(raw));
      return changeMountTable(ctx, request, reply, mounts, (tx) =>
        tunePath !== null
          ? mounts.tune(tx, tunePath, { description: field(body, "description"), options: field(body, "options") })
          : mounts.enable(tx, raw, {
              type: field(body, "type"),
              options: field(body, "options"),
              description: field(body, "description"),
              local: field(body, "local"),
              seal_wrap: field(body, "seal_wrap"),
            }),
      );
    },
  });

  app.delete("/v1/sys/mounts/*", { config: { vault: spec } }, async (request, reply) => {
    const raw = mountPathBelow(request, "sys/mounts");
    if (raw === "") throw badRequest("a mount path is required");
    return changeMountTable(ctx, request, reply, mounts, (tx) => mounts.disable(tx, raw));
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

async function listMounts(request: FastifyRequest, mounts: MountTable): Promise<Record<string, unknown>> {
  const data: Record<string, MountInfo> = {};
  for (const mount of await mounts.list()) data[mount.path] = mountInfo(mount);
  return mountListing(request, data);
}
