import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { requestToken } from "../auth/request-token.js";
import type { TokenStore } from "../auth/token-store.js";
import type { EgideContext } from "../egide-context.js";
import { VaultError, badRequest, sealedError } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { bodyObject, field } from "../kv/kv-input.js";
import { vaultTimestamp } from "../kv/kv-time.js";
import { requestWrapping } from "../wrapping/wrap-request.js";
import { WrappedResponseSweeper } from "../wrapping/wrapped-response-sweeper.js";
import { discardWrappedResponse, findWrappedResponse, storeWrappedResponse, wrappedEnvelope } from "../wrapping/wrapped-response-store.js";
import { invalidWrappingToken, isWrappingTokenEntry } from "../wrapping/wrapping-token.js";
import { sessionOf } from "./auth-token-response.js";

/** Options of {@link registerWrappingRoutes}. */
export interface WrappingRoutesOptions {
  tokens: TokenStore;
  /** The server's `max_lease_ttl`, ms: no wrapping token lives longer. */
  maxTtlMs: number;
  /** How often expired wrapped responses are swept away, ms (default one minute; 0: never). */
  sweepIntervalMs?: number;
}

const JSON_TYPE = "application/json; charset=utf-8";

/**
 * Vault's `sys/wrapping/*` endpoints (response wrapping: the responses are wrapped by the
 * wrapping hook, see `wrapping/wrap-response-hook.ts`):
 *
 * - `sys/wrapping/wrap` (`update`): wraps the request body's data; needs `X-Vault-Wrap-TTL`.
 * - `sys/wrapping/unwrap` (`update`): returns the wrapped response, exactly once: the wrapping
 *   token is the request's own token, or `token` in the body with the caller's own token. The
 *   wrapped response is read and deleted, and the wrapping token revoked, in one transaction
 *   (with the audit row), so two concurrent unwraps, on any instances, cannot both succeed.
 * - `sys/wrapping/lookup` (unauthenticated, as in Vault): the creation path, time and TTL of a
 *   wrapping token, without using it.
 * - `sys/wrapping/rewrap` (`update`): a new wrapping token for the same response and TTL; the
 *   old one is revoked in the same transaction.
 *
 * A token that is not a live wrapping token is Vault's 400 "wrapping token is not valid or does
 * not exist". Expired wrapped responses are swept away periodically.
 */
export function registerWrappingRoutes(app: FastifyInstance, ctx: EgideContext, options: WrappingRoutesOptions): void {
  const { tokens, maxTtlMs } = options;
  const route = (template: string, access: "acl" | "public" = "acl"): { config: { vault: VaultRouteSpec } } => ({
    config: { vault: { template, access, operation: "update" } },
  });
  const both = (template: string, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>, access?: "public") => {
    app.post(`/v1/${template}`, route(template, access), handler);
    app.put(`/v1/${template}`, route(template, access), handler);
  };

  both("sys/wrapping/wrap", async (request) => {
    if (requestWrapping(request) === undefined) throw badRequest("endpoint requires response wrapping to be used");
    return vaultResponse(request, bodyObject(request.body));
  });

  both("sys/wrapping/unwrap", async (request, reply) => {
    const session = sessionOf(request);
    const given = bodyToken(request);
    const target = given ?? session.token;
    // A wrapping token used as the request's token while unwrapping another one is spent too, as
    // Vault spends the request token's use.
    const spent = given !== undefined && given !== session.token && isWrappingTokenEntry(session.entry) ? session.token : undefined;
    const response = await ctx.mutate(request, 200, async (tx) => {
      const found = await findWrappedResponse(tx, tokens, target);
      if (found === null) throw invalidWrappingToken();
      await discardWrappedResponse(tx, tokens, found.entry.accessor);
      const other = spent === undefined ? null : await tokens.lookup(spent, tx);
      if (other !== null) await discardWrappedResponse(tx, tokens, other.accessor);
      return found.stored.response;
    });
    return reply.code(200).header("content-type", JSON_TYPE).send(response);
  });

  both(
    "sys/wrapping/lookup",
    async (request) => {
      if (ctx.sealed) throw sealedError();
      const token = bodyToken(request) ?? requestToken(request);
      if (token === undefined) throw badRequest('missing "token" value in input');
      const found = await findWrappedResponse(ctx.storage, tokens, token);
      if (found === null) throw invalidWrappingToken();
      const { stored } = found;
      return vaultResponse(request, {
        creation_path: stored.creationPath,
        creation_time: vaultTimestamp(stored.createdAt),
        creation_ttl: Math.floor(stored.creationTtlMs / 1000),
      });
    },
    "public",
  );

  both("sys/wrapping/rewrap", async (request) => {
    const session = sessionOf(request);
    const target = bodyToken(request) ?? session.token;
    const wrapping = requestWrapping(request);
    const info = await ctx.mutate(request, 200, async (tx) => {
      const found = await findWrappedResponse(tx, tokens, target);
      if (found === null) throw invalidWrappingToken();
      const { stored } = found;
      // Vault's order: the original TTL, or the request's own wrap TTL when shorter.
      const ttlMs = Math.min(stored.creationTtlMs, wrapping?.ttlMs ?? Number.POSITIVE_INFINITY, maxTtlMs);
      const rewrapped = await storeWrappedResponse(tx, tokens, {
        response: stored.response,
        ttlMs,
        creationPath: stored.creationPath,
        wrappedAccessor: stored.wrappedAccessor,
      });
      await discardWrappedResponse(tx, tokens, found.entry.accessor);
      return rewrapped;
    });
    // Already wrapped: the wrapping hook leaves it as it is.
    if (wrapping !== undefined) wrapping.done = true;
    return wrappedEnvelope(request.id, info);
  });

  const interval = options.sweepIntervalMs ?? 60_000;
  if (interval > 0) {
    const sweeper = new WrappedResponseSweeper(ctx.storage, tokens);
    let running = false;
    const timer = setInterval(() => {
      if (running || ctx.sealed) return;
      running = true;
      sweeper
        .sweep()
        .catch((error: unknown) => app.log.warn({ err: error }, "sweeping expired wrapped responses failed"))
        .finally(() => {
          running = false;
        });
    }, interval);
    timer.unref();
    app.addHook("onClose", async () => clearInterval(timer));
  }
}

/**
 * The wrapping token given in the body (`token`), or undefined when none is. Vault's refusals
 * (403) for a `token` that is empty or not a string.
 */
function bodyToken(request: FastifyRequest): string | undefined {
  const value = field(bodyObject(request.body), "token");
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new VaultError(403, "error validating wrapping token: could not decode token in request body");
  if (value === "") throw new VaultError(403, "error validating wrapping token: empty token in request body");
  return value;
}
