import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { EgideContext } from "../egide-context.js";
import { badRequest } from "../http/vault-error.js";
import type { VaultRouteSpec } from "../http/vault-route.js";

/**
 * `GET /v1/sys/metrics`: `?format=prometheus` gives Prometheus' text format, no format gives
 * prom-client's JSON. A token with `read` on `sys/metrics` is needed unless
 * `[telemetry] unauthenticated_metrics_access = true`.
 */
export function registerMetricsRoute(app: FastifyInstance, ctx: EgideContext, options: { unauthenticated: boolean }): void {
  const spec: VaultRouteSpec = { template: "sys/metrics", access: options.unauthenticated ? "public" : "acl", operation: "read" };
  app.get("/v1/sys/metrics", { config: { vault: spec } }, async (request: FastifyRequest, reply: FastifyReply) => {
    const format = (request.query as Record<string, string | undefined>).format;
    if (format === "prometheus") {
      return reply.header("content-type", ctx.metrics.contentType).send(await ctx.metrics.metrics());
    }
    if (format !== undefined && format !== "") throw badRequest(`unknown metrics format ${JSON.stringify(format)}; use format=prometheus`);
    return reply.send(await ctx.metrics.getMetricsAsJSON());
  });
}
