import type { FastifyInstance, FastifyRequest } from "fastify";
import { requiredString } from "../auth/token-input.js";
import type { TokenStore } from "../auth/token-store.js";
import { VaultError, badRequest } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import { bodyObject } from "../kv/kv-input.js";
import { lookupData, sessionOf } from "./auth-token-response.js";
import { postPut, tokenRoute } from "./auth-token-route-spec.js";

/**
 * `GET|POST auth/token/lookup-self`, `POST auth/token/lookup` (the token in the body; the data
 * holds its `id`, as Vault's does) and `POST auth/token/lookup-accessor` (`id` is "").
 */
export function registerTokenLookupRoutes(app: FastifyInstance, tokens: TokenStore): void {
  const lookupSelf = async (request: FastifyRequest) => {
    const { entry, token } = sessionOf(request);
    return vaultResponse(request, lookupData(entry, token));
  };
  app.get("/v1/auth/token/lookup-self", tokenRoute("auth/token/lookup-self", { operation: "read" }), lookupSelf);
  postPut(app, "/v1/auth/token/lookup-self", tokenRoute("auth/token/lookup-self"), lookupSelf);

  postPut(app, "/v1/auth/token/lookup", tokenRoute("auth/token/lookup"), async (request) => {
    const token = requiredString(bodyObject(request.body), "token", "missing token ID");
    const entry = await tokens.lookup(token);
    if (entry === null) throw new VaultError(403, "bad token");
    return vaultResponse(request, lookupData(entry, token));
  });

  postPut(app, "/v1/auth/token/lookup-accessor", tokenRoute("auth/token/lookup-accessor"), async (request) => {
    const accessor = requiredString(bodyObject(request.body), "accessor", "missing accessor");
    const found = await tokens.lookupAccessor(accessor);
    if (found === null) throw badRequest("invalid accessor");
    return vaultResponse(request, lookupData(found.entry, ""));
  });
}
