import type { AuditQuery } from "@egide/storage-core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { EgideContext } from "../egide-context.js";
import { badRequest } from "../http/vault-error.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { vaultResponse } from "../http/vault-response.js";

/**
 * `GET /v1/sys/audit-log`: the audit rows, for tokens with `read` and `sudo` on
 * `sys/audit-log`. Query parameters: `since`, `until` (RFC 3339), `path_prefix`, `request_id`,
 * `operation`, `success`, `after_id` and `limit` (default 1000, at most 10000).
 */
export function registerAuditLogRoute(app: FastifyInstance, ctx: EgideContext): void {
  const spec: VaultRouteSpec = { template: "sys/audit-log", access: "acl", operation: "read", sudo: true };
  app.get("/v1/sys/audit-log", { config: { vault: spec } }, async (request: FastifyRequest) => {
    const query = (request.query ?? {}) as Record<string, string | undefined>;
    const filter: AuditQuery = {};
    if (query.since) filter.since = time(query.since, "since");
    if (query.until) filter.until = time(query.until, "until");
    if (query.path_prefix) filter.pathPrefix = query.path_prefix;
    if (query.request_id) {
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(query.request_id))
        throw badRequest("request_id must be a UUID");
      filter.requestId = query.request_id;
    }
    if (query.operation) filter.operation = query.operation;
    if (query.success !== undefined) filter.success = query.success === "true";
    if (query.after_id) filter.afterId = whole(query.after_id, "after_id");
    if (query.limit) filter.limit = whole(query.limit, "limit");
    const rows = await ctx.adapter.audit.query(filter);
    const entries = rows.map((row) => ({
      id: row.id,
      timestamp: row.timestamp.toISOString(),
      operation: row.operation,
      path: row.path,
      source_ip: row.sourceIp,
      user_id: row.userId,
      request_id: row.requestId,
      success: row.success,
      error_message: row.errorMessage,
      metadata: row.metadata,
    }));
    return vaultResponse(request, { entries });
  });
}

function time(value: string, name: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw badRequest(`${name} must be an RFC 3339 time`);
  return date;
}

function whole(value: string, name: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw badRequest(`${name} must be a whole number`);
  return parsed;
}
