import type { FastifyInstance, FastifyRequest } from "fastify";
import { durationMs, requiredString } from "../auth/token-input.js";
import type { TokenRenewal } from "../auth/token-store.js";
import { badRequest } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import { bodyObject } from "../kv/kv-input.js";
import { authBlock, sessionOf } from "./auth-token-response.js";
import type { TokenRouteOptions, TokenRoutesContext } from "./auth-token-route-spec.js";
import { postPut, tokenRoute } from "./auth-token-route-spec.js";

/**
 * `POST auth/token/renew` (token in the body), `renew-self` and `renew-accessor` (the answer's
 * `client_token` is ""), each with an optional `increment`. The renewal follows Vault's
 * CalculateTTL: a periodic token gets its period again, any token at most up to its explicit
 * maximum (and the server's maximum from its creation); `lease_duration` is the TTL granted.
 */
export function registerTokenRenewRoutes(app: FastifyInstance, ctx: TokenRoutesContext, options: TokenRouteOptions): void {
  const { tokens } = options;
  const increment = (body: Record<string, unknown>) =>
    body.increment === undefined || body.increment === null || body.increment === "" ? 0 : durationMs(body.increment, "increment");

  const renew = async (request: FastifyRequest, accessor: string, clientToken: string) => {
    const body = bodyObject(request.body);
    const incrementMs = increment(body);
    const result: TokenRenewal = await ctx.mutate(request, 200, (tx) => tokens.renewAccessor(tx, accessor, incrementMs, options.maxTtlMs));
    if (!result.ok) throw badRequest(result.message);
    return vaultResponse(request, null, { auth: authBlock(clientToken, result.entry, result.grantedMs), warnings: result.warnings });
  };

  postPut(app, "/v1/auth/token/renew-self", tokenRoute("auth/token/renew-self"), async (request) => {
    const { entry, token } = sessionOf(request);
    return renew(request, entry.accessor, token);
  });

  postPut(app, "/v1/auth/token/renew", tokenRoute("auth/token/renew"), async (request) => {
    const token = requiredString(bodyObject(request.body), "token", "missing token ID");
    const entry = await tokens.lookup(token);
    if (entry === null) throw badRequest("token not found");
    return renew(request, entry.accessor, token);
  });

  postPut(app, "/v1/auth/token/renew-accessor", tokenRoute("auth/token/renew-accessor"), async (request) => {
    const accessor = requiredString(bodyObject(request.body), "accessor", "missing accessor");
    if ((await tokens.lookupAccessor(accessor)) === null) throw badRequest("invalid accessor");
    return renew(request, accessor, "");
  });
}
