import type { FastifyReply, FastifyRequest } from "fastify";
import type { EgideContext } from "../egide-context.js";
import { errorResponse } from "../http/error-response.js";
import { requestWrapping } from "./wrap-request.js";
import { storeWrappedResponse } from "./wrapped-response-store.js";
import { wrappedEnvelope } from "./wrapped-response-store.js";

const JSON_TYPE = "application/json; charset=utf-8";

/**
 * The `onSend` hook that wraps responses (Vault's `wrapInCubbyhole`): when the request asked for
 * wrapping (`X-Vault-Wrap-TTL`, accepted by the request pipeline) and succeeded with a body, a
 * wrapping token is created and the body stored under it in one transaction, and the answer is
 * the envelope with `wrap_info` only. A request that was not audited yet gets its audit row in
 * that same transaction (so nothing is wrapped without it). Errors and bodiless answers (204)
 * are not wrapped. When the response cannot be stored, the answer is an error: never the
 * response itself.
 *
 * It must run before the audit hook (registered before it), so that the audit row and the
 * answer are those of the wrapped response.
 */
export function wrapResponseHook(ctx: Pick<EgideContext, "storage" | "tokens" | "mutate">) {
  return async (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const wrapping = requestWrapping(request);
    if (wrapping === undefined || wrapping.done) return payload;
    wrapping.done = true;
    if (reply.statusCode !== 200 || request.method === "HEAD") return payload;
    const text = typeof payload === "string" ? payload : Buffer.isBuffer(payload) ? payload.toString("utf8") : undefined;
    if (text === "") return payload;
    const parsed = parseObject(text);
    if (parsed === undefined) {
      // A stream (a backup) or a body that is not Vault's JSON envelope: not wrapped, and not
      // answered either.
      const stream = payload as { destroy?: () => void } | null;
      if (stream !== null && typeof stream === "object" && typeof stream.destroy === "function") stream.destroy();
      return refuse(reply, 400, ["this response cannot be wrapped"]);
    }
    const auth = parsed.auth as { accessor?: unknown } | null | undefined;
    const wrappedAccessor = typeof auth?.accessor === "string" && auth.accessor !== "" ? auth.accessor : undefined;
    const wrap = (tx: Parameters<Parameters<EgideContext["mutate"]>[2]>[0]) =>
      storeWrappedResponse(tx, ctx.tokens, {
        response: text as string,
        ttlMs: wrapping.ttlMs,
        creationPath: request.egide.path,
        wrappedAccessor,
      });
    try {
      const state = request.egide;
      const info = state.audited || state.skipAudit ? await ctx.storage.transaction(wrap) : await ctx.mutate(request, 200, wrap);
      void reply.header("content-type", JSON_TYPE);
      return JSON.stringify(wrappedEnvelope(request.id, info));
    } catch (error) {
      const { status, errors, internal } = errorResponse(error);
      if (internal) request.log.error({ err: error, requestId: request.id }, "response wrapping failed");
      return refuse(reply, Math.max(status, 500), [`the response could not be wrapped: ${errors.join("; ")}`]);
    }
  };
}

function refuse(reply: FastifyReply, status: number, errors: string[]): string {
  void reply.code(status).header("content-type", JSON_TYPE);
  return JSON.stringify({ errors });
}

function parseObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
