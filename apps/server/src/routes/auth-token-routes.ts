import type { FastifyInstance, FastifyRequest } from "fastify";
import { planTokenCreate } from "../auth/token-create-plan.js";
import type { TokenCreateInput } from "../auth/token-create-plan.js";
import { TokenRoleStore } from "../auth/token-role-store.js";
import { badRequest, unsupportedOperation } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { bodyObject } from "../kv/kv-input.js";
import { registerTokenLookupRoutes } from "./auth-token-lookup-routes.js";
import { registerTokenRenewRoutes } from "./auth-token-renew-routes.js";
import type { TokenRouteOptions, TokenRoutesContext } from "./auth-token-route-spec.js";
import { postPut, roleNamePath, tokenRoute } from "./auth-token-route-spec.js";
import { authBlock, sessionOf } from "./auth-token-response.js";
import { registerTokenRevokeRoutes } from "./auth-token-revoke-routes.js";
import { registerTokenRoleRoutes } from "./auth-token-role-routes.js";

export {
  MAX_DISPLAY_NAME_LENGTH,
  MAX_META_KEY_LENGTH,
  MAX_META_KEYS,
  MAX_META_VALUE_LENGTH,
} from "../auth/token-input.js";
export type { TokenRouteOptions } from "./auth-token-route-spec.js";

/**
 * Vault's token auth method (`auth/token/…`, every endpoint of Vault's token API): create,
 * create-orphan and create against a role; lookup, lookup-self, lookup-accessor; renew,
 * renew-self, renew-accessor; revoke, revoke-self, revoke-accessor, revoke-orphan; roles;
 * `LIST auth/token/accessors` (sudo) and tidy. Each route declares its Vault path and operation,
 * so the ACL (with parameter constraints) is checked by the request pipeline; the handlers only
 * apply Vault's own rules (subset of policies, sudo for orphans and periodic tokens, …).
 */
export function registerTokenRoutes(app: FastifyInstance, ctx: TokenRoutesContext, options: TokenRouteOptions): void {
  const { tokens } = options;
  const roles = new TokenRoleStore(tokens.storage);

  const create = (endpoint: TokenCreateInput["endpoint"]) => async (request: FastifyRequest) => {
    const session = sessionOf(request);
    let role = null;
    if (endpoint === "role") {
      const name = request.egide.path.slice("auth/token/create/".length).replace(/\/$/, "");
      role = await roles.get(name);
      if (role === null) throw badRequest(`unknown role ${name}`);
    }
    const plan = planTokenCreate({
      body: bodyObject(request.body),
      parent: session.entry,
      isRoot: session.isRoot,
      sudo: session.sudo,
      endpoint,
      role,
      defaultTtlMs: options.defaultTtlMs,
      maxTtlMs: options.maxTtlMs,
    });
    const warnings = [...plan.warnings];
    for (const name of plan.token.policies) {
      if (name !== "root" && (await ctx.policies.get(name)) === null) warnings.push(`Policy "${name}" does not exist`);
    }
    const { token, entry } = await ctx.mutate(request, 200, (tx) => tokens.create(tx, plan.token));
    return vaultResponse(request, null, { auth: authBlock(token, entry, entry.creationTtlMs), warnings });
  };
  // Vault's token store: creating needs `update` on the endpoint (never `create` alone).
  postPut(app, "/v1/auth/token/create", tokenRoute("auth/token/create"), create("create"));
  postPut(app, "/v1/auth/token/create-orphan", tokenRoute("auth/token/create-orphan"), create("create-orphan"));
  postPut(
    app,
    "/v1/auth/token/create/:role_name",
    tokenRoute("auth/token/create/:role_name", { canonical: roleNamePath("auth/token/create/") }),
    create("role"),
  );

  // Root-protected in Vault (`accessors*`): list and sudo.
  const listAccessors = async (request: FastifyRequest) => {
    if (request.egide.operation !== "list") throw unsupportedOperation();
    return vaultResponse(request, { keys: await tokens.listAccessors() });
  };
  const accessors = { config: { vault: { template: "auth/token/accessors", access: "acl", list: true, sudo: true } as VaultRouteSpec } };
  app.get("/v1/auth/token/accessors", accessors, listAccessors);
  app.get("/v1/auth/token/accessors/", accessors, listAccessors);

  // Vault runs tidy in the background and answers 202; here it runs in one transaction (with
  // its audit row) before the same answer, so that it is finished when the client hears back.
  postPut(app, "/v1/auth/token/tidy", tokenRoute("auth/token/tidy"), async (request, reply) => {
    await ctx.mutate(request, 202, (tx) => tokens.tidy(tx));
    reply.code(202);
    return vaultResponse(request, null, {
      warnings: ["Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."],
    });
  });

  registerTokenLookupRoutes(app, tokens);
  registerTokenRenewRoutes(app, ctx, options);
  registerTokenRevokeRoutes(app, ctx, tokens);
  registerTokenRoleRoutes(app, ctx, roles, options.maxTtlMs);
}
