import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { applyRoleWrite, roleData } from "../auth/token-role.js";
import type { TokenRoleStore } from "../auth/token-role-store.js";
import { notFound, unsupportedOperation } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import type { TokenRoutesContext } from "./auth-token-route-spec.js";
import { roleNamePath } from "./auth-token-route-spec.js";

const ROLES = "auth/token/roles/";

/**
 * Token roles: `LIST auth/token/roles`, and `GET`, `POST`/`PUT` (Vault's existence check: the
 * `create` capability for a new role, `update` for an existing one) and `DELETE` on
 * `auth/token/roles/:role_name`. A write answers 204, or 200 with Vault's warnings.
 */
export function registerTokenRoleRoutes(app: FastifyInstance, ctx: TokenRoutesContext, roles: TokenRoleStore, maxTtlMs: number): void {
  const nameOf = (path: string) => path.slice(ROLES.length).replace(/\/$/, "");
  const named: { config: { vault: VaultRouteSpec } } = {
    config: {
      vault: {
        template: `${ROLES}:role_name`,
        access: "acl",
        canonical: roleNamePath(ROLES),
        exists: async (path) => (await roles.get(nameOf(path))) !== null,
      },
    },
  };

  const list = async (request: FastifyRequest) => {
    if (request.egide.operation !== "list") throw unsupportedOperation();
    const keys = await roles.list();
    // Vault answers an empty list with 404.
    if (keys.length === 0) throw notFound();
    return vaultResponse(request, { keys });
  };
  const listable = { config: { vault: { template: "auth/token/roles", access: "acl", list: true } as VaultRouteSpec } };
  app.get("/v1/auth/token/roles", listable, list);
  app.get("/v1/auth/token/roles/", listable, list);

  app.get("/v1/auth/token/roles/:role_name", named, async (request) => {
    const role = await roles.get(nameOf(request.egide.path));
    if (role === null) throw notFound();
    return vaultResponse(request, roleData(role));
  });

  const write = async (request: FastifyRequest, reply: FastifyReply) => {
    const name = nameOf(request.egide.path);
    const { role, warnings } = applyRoleWrite(name, await roles.get(name), request.body, maxTtlMs);
    await ctx.mutate(request, warnings.length > 0 ? 200 : 204, (tx) => roles.put(tx, role));
    if (warnings.length > 0) return vaultResponse(request, null, { warnings });
    return reply.code(204).send();
  };
  app.post("/v1/auth/token/roles/:role_name", named, write);
  app.put("/v1/auth/token/roles/:role_name", named, write);

  app.delete("/v1/auth/token/roles/:role_name", named, async (request, reply) => {
    const name = nameOf(request.egide.path);
    await ctx.mutate(request, 204, (tx) => roles.delete(tx, name));
    return reply.code(204).send();
  });
}
