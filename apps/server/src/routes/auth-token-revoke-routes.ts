import type { FastifyInstance } from "fastify";
import { requiredString } from "../auth/token-input.js";
import type { TokenStore } from "../auth/token-store.js";
import { badRequest } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import { bodyObject } from "../kv/kv-input.js";
import { sessionOf } from "./auth-token-response.js";
import type { TokenRoutesContext } from "./auth-token-route-spec.js";
import { postPut, tokenRoute } from "./auth-token-route-spec.js";

/**
 * `POST auth/token/revoke`, `revoke-self` and `revoke-accessor` (the token and its whole tree),
 * and `revoke-orphan` (the token only: its children become orphans; sudo or root, as Vault's
 * root-protected endpoint). Answers 204, as Vault does.
 */
export function registerTokenRevokeRoutes(app: FastifyInstance, ctx: TokenRoutesContext, tokens: TokenStore): void {
  postPut(app, "/v1/auth/token/revoke", tokenRoute("auth/token/revoke"), async (request, reply) => {
    const token = requiredString(bodyObject(request.body), "token", "missing token ID");
    // An unknown (or expired) token is not an error: Vault answers 204 either way.
    if ((await tokens.lookup(token)) !== null) await ctx.mutate(request, 204, (tx) => tokens.revoke(tx, token));
    return reply.code(204).send();
  });

  postPut(app, "/v1/auth/token/revoke-self", tokenRoute("auth/token/revoke-self"), async (request, reply) => {
    const { entry } = sessionOf(request);
    await ctx.mutate(request, 204, (tx) => tokens.revokeAccessor(tx, entry.accessor));
    return reply.code(204).send();
  });

  postPut(app, "/v1/auth/token/revoke-accessor", tokenRoute("auth/token/revoke-accessor"), async (request, reply) => {
    const accessor = requiredString(bodyObject(request.body), "accessor", "missing accessor");
    if ((await tokens.lookupAccessor(accessor)) === null) {
      return vaultResponse(request, null, { warnings: ["No token found with this accessor"] });
    }
    await ctx.mutate(request, 204, (tx) => tokens.revokeAccessor(tx, accessor));
    return reply.code(204).send();
  });

  postPut(app, "/v1/auth/token/revoke-orphan", tokenRoute("auth/token/revoke-orphan"), async (request, reply) => {
    const token = requiredString(bodyObject(request.body), "token", "missing token ID");
    if (!sessionOf(request).sudo) throw badRequest("root or sudo privileges required to revoke and orphan");
    if ((await tokens.lookup(token)) === null) throw badRequest("token to revoke not found");
    await ctx.mutate(request, 204, (tx) => tokens.revokeOrphan(tx, token));
    return reply.code(204).send();
  });
}
