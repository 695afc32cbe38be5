import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { EgideContext } from "../egide-context.js";
import type { StorageCacheStatus } from "../cache/storage-cache.js";
import type { HealthProbe } from "../health/health-probe.js";
import { badRequest } from "../http/vault-error.js";
import { SERVER_VERSION } from "../server-version.js";

/**
 * `GET|HEAD /v1/sys/health`, with Vault's codes: 200 initialised, unsealed and active; 501 not
 * initialised; 503 sealed (this server has no standbys, so 429/472/473 never happen unless a
 * query parameter maps them). Vault's query parameters `standbyok`, `perfstandbyok`,
 * `activecode`, `standbycode`, `sealedcode`, `uninitcode`, `drsecondarycode` and
 * `performancestandbycode` are honoured, plus `storageunhealthycode` (default 503) for an
 * active server whose storage probe fails. The body adds the specification's `storage`
 * object, from the background probe, so this never waits on the database (with several
 * PostgreSQL hosts it has `active_host`, the position from 1 of the host in use: never its
 * name, since health answers without a token), and `cache`: whether
 * the coherent cache is on, the state of the storage change feed (`live`, `not_live`,
 * `absent`, `unused`) and whether reads are answered from the cache now. A feed that is not
 * live does not make the server unhealthy: reads then go to storage.
 */
export function registerHealthRoute(
  app: FastifyInstance,
  ctx: EgideContext,
  probe: HealthProbe,
  cacheStatus?: () => StorageCacheStatus,
): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!ctx.seal.initialized) await ctx.seal.refresh().catch(() => undefined);
    const query = (request.query ?? {}) as Record<string, string | undefined>;
    // Every code parameter is checked, even those this server never answers with (standbys).
    for (const name of CODE_PARAMETERS) code(query, name, 200);
    const storage = probe.current();
    const initialized = ctx.seal.initialized;
    const sealed = ctx.seal.sealed;
    let status: number;
    if (!initialized) status = code(query, "uninitcode", 501);
    else if (sealed) status = code(query, "sealedcode", 503);
    else if (storage.status !== "healthy") status = code(query, "storageunhealthycode", 503);
    else status = code(query, "activecode", 200);
    const body = {
      initialized,
      sealed,
      standby: false,
      performance_standby: false,
      replication_performance_mode: "disabled",
      replication_dr_mode: "disabled",
      server_time_utc: Math.floor(Date.now() / 1000),
      version: SERVER_VERSION,
      storage,
      ...(cacheStatus ? { cache: cacheHealth(cacheStatus()) } : {}),
    };
    reply.code(status).header("cache-control", "no-store");
    return request.method === "HEAD" ? reply.send() : reply.send(body);
  };
  app.get("/v1/sys/health", { config: { vault: { template: "sys/health", access: "public", operation: "read" } } }, handler);
}

const CODE_PARAMETERS = [
  "activecode",
  "standbycode",
  "sealedcode",
  "uninitcode",
  "drsecondarycode",
  "performancestandbycode",
  "storageunhealthycode",
];

function code(query: Record<string, string | undefined>, name: string, fallback: number): number {
  // standbyok/perfstandbyok only change standby answers, which this server never gives.
  const value = query[name];
  if (value === undefined || value === "") return fallback;
  const parsed = Number(value);
  // A 1xx answer is not a final response (101 would tell a proxy the connection switched
  // protocols): only 200-599 can be chosen.
  if (!Number.isInteger(parsed) || parsed < 200 || parsed > 599) throw badRequest(`${name} must be an HTTP status code from 200 to 599`);
  return parsed;
}

/** The public part of the cache's status: no sizes, nothing about the data. */
function cacheHealth(status: StorageCacheStatus): { enabled: boolean; feed: StorageCacheStatus["feed"]; serving: boolean } {
  return { enabled: status.enabled, feed: status.feed, serving: status.serving };
}
