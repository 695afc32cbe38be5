import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { EgideContext } from "../egide-context.js";
import { badRequest } from "../http/vault-error.js";

/**
 * `GET /v1/sys/metrics`: `?format=prometheus` gives Prometheus' text format, no format gives
 * prom-client's JSON. A token with `read` on `sys/metrics` is needed unless
 * `[telemetry] unauthenticated_metrics_access = true`.
 */
export function registerMetricsRoute(app: FastifyInstance, ctx: EgideContext, options: { unauthenticated: boolean }): void {
  app.get("/v1/sys/metrics", async (request: FastifyRequest, reply: FastifyReply) => {
    ctx.describe(request, "read", "sys/metrics");
    if (!options.unauthenticated) await ctx.authorize(request, "sys/metrics", "read");
    const format = (request.query as Record<string, string | undefined>).format;
    if (format === "prometheus") {
      return reply.header("content-type", ctx.metrics.contentType).send(await ctx.metrics.metrics());
    }
    if (format !== undefined && format !== "") throw badRequest(`unknown metrics format ${JSON.stringify(format)}; use format=prometheus`);
    return reply.send(await ctx.metrics.getMetricsAsJSON());
  });
}
