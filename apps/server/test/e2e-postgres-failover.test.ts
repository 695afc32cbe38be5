/**
 * End to end: failover to a replica at the level of the whole server (issue 15, point 3).
 *
 * A primary and a synchronous streaming replica (`pg_basebackup -R`), throwaway clusters of this
 * file's own (never the machine's shared server), and a real server listing both
 * (`hosts = [primary, replica]`), under KV write load. The primary crashes (`pg_ctl stop -m
 * immediate`) and the replica is promoted. What must hold, and is asserted:
 * - the server writes again within {@link RESUME_BOUND_MS} of the promotion, by itself;
 * - every answer meanwhile is a 200 or a 503 (no 500, no hang);
 * - no acknowledged write is lost (synchronous replication): each reads back with its value;
 * - the cache's change feed (`cache.feed` in health) is live again, on the new primary;
 * - the cache's change feed (`cache.feed` in health) is live again, on the new primary;
 * - health shows the host in use only by its position (`storage.active_host`: 1, then 2) and
 *   never a host name; the metrics (with a token) name it (`egide_storage_active_host`).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startThrowawayCluster, type ThrowawayCluster } from "@egide/test-postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseServerConfig, type RunningServer, startServer } from "../src/index.js";

/** The server must write again within this long of the promotion. */
const RESUME_BOUND_MS = 10_000;
const CLIENT_DEADLINE_MS = 8_000;
const WRITERS = 6;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function request(
  url: string,
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  try {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { "x-vault-token": token, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(CLIENT_DEADLINE_MS),
    });
    return { status: response.status, text: await response.text() };
  } catch (error) {
    return { status: 0, text: String(error) };
  }
}

describe("failover to a synchronous replica, at the server level", () => {
  let primary: ThrowawayCluster;
  let replica: ThrowawayCluster;
  let server: RunningServer;
  let dir: string;
  let token = "";

  beforeAll(async () => {
    primary = await startThrowawayCluster({ settings: ["synchronous_standby_names = '*'", "synchronous_commit = on"] });
    // pg_basebackup copies the primary's settings: once promoted, the replica must not wait for a standby of its own.
    replica = await startThrowawayCluster({ replicaOf: primary, settings: ["synchronous_standby_names = ''"] });
    dir = mkdtempSync(join(tmpdir(), "egide-pg-failover-"));
    const hosts = [primary, replica].map((c) => JSON.stringify(`${c.host}:${c.port}`)).join(", ");
    const config = parseServerConfig(
      `log_level = "silent"
[storage]
type = "postgresql"
health_interval = "200ms"
health_timeout = "300ms"
[storage.postgresql]
hosts = [${hosts}]
username = "postgres"
database = "postgres"
schema = "egide"
ssl_mode = "disable"
pool_max = 8
connection_timeout = "1s"
operation_timeout = "3s"
statement_timeout = "2s"
[listener]
address = "127.0.0.1:0"
tls_disable = true
`,
    );
    server = await startServer({ config });
    ({ rootToken: token } = await server.initialize({ shares: 1, threshold: 1 }, true));
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    primary?.destroy();
    replica?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("checks that the replica is synchronous", async () => {
    const pg = (await import("pg")).default;
    const client = new pg.Client({ host: primary.host, port: primary.port, user: "postgres", database: "postgres" });
    await client.connect();
    try {
      const rows = (await client.query<{ sync_state: string }>("SELECT sync_state FROM pg_stat_replication")).rows;
      expect(rows.map((r) => r.sync_state)).toEqual(["sync"]);
    } finally {
      await client.end();
    }
  });

  it("shows the host in use: its position in health, its name in the metrics", async () => {
    const health = await request(server.url, "GET", "/v1/sys/health", "");
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text).storage).toMatchObject({ status: "healthy", active_host: 1 });
    expect(health.text).not.toContain(String(primary.port));
    expect(health.text).not.toContain("127.0.0.1");
    const unauthenticated = await request(server.url, "GET", "/v1/sys/metrics?format=prometheus", "");
    expect(unauthenticated.status).not.toBe(200);
    expect(unauthenticated.text).not.toContain("egide_storage_active_host");
    const metrics = await request(server.url, "GET", "/v1/sys/metrics?format=prometheus", token);
    expect(metrics.text).toContain(`egide_storage_active_host{host="127.0.0.1:${primary.port}"} 1`);
  });

  it("resumes writing within 10 s of the promotion, and loses no acknowledged write", { timeout: 120_000 }, async () => {
    const acknowledged = new Map<string, { value: string; at: number }>();
    const statuses = new Map<number, number>();
    let running = true;
    const writers = Array.from({ length: WRITERS }, async (_, writer) => {
      for (let n = 0; running; n++) {
        const key = `failover/w${writer}-${n}`;
        const value = `${writer}-${n}-${Math.random()}`;
        const answer = await request(server.url, "POST", `/v1/secret/data/${key}`, token, { data: { value } });
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 200) acknowledged.set(key, { value, at: Date.now() });
        else await sleep(25);
      }
    });
    const healthPositions: number[] = [];
    const healthWatch = (async () => {
      while (running) {
        const health = await request(server.url, "GET", "/v1/sys/health", "");
        const position = JSON.parse(health.text || "{}")?.storage?.active_host;
        if (typeof position === "number" && healthPositions.at(-1) !== position) healthPositions.push(position);
        expect(health.text).not.toContain("127.0.0.1");
        await sleep(100);
      }
    })();
    while (acknowledged.size < 100) await sleep(50);
    const crashedAt = Date.now();
    await primary.pgCtl(["-m", "immediate", "-w", "-t", "60", "stop"]);
    await sleep(1000);
    const promoteStarted = Date.now();
    await replica.pgCtl(["-w", "-t", "60", "promote"]);
    const promotedAt = Date.now();
    const resumed = async () => [...acknowledged.values()].some((a) => a.at >= promotedAt);
    while (!(await resumed()) && Date.now() - promotedAt < RESUME_BOUND_MS + 5000) await sleep(25);
    const firstAfter = Math.min(...[...acknowledged.values()].filter((a) => a.at >= promotedAt).map((a) => a.at));
    const firstAfterStart = Math.min(...[...acknowledged.values()].filter((a) => a.at >= promoteStarted).map((a) => a.at));
    // The cache's change feed follows the pool to the new primary and is live again.
    let feedLiveAt = Number.NaN;
    while (Date.now() - promotedAt < RESUME_BOUND_MS) {
      const health = await request(server.url, "GET", "/v1/sys/health", "");
      if (JSON.parse(health.text || "{}")?.cache?.feed === "live") {
        feedLiveAt = Date.now();
        break;
      }
      await sleep(50);
    }
    await sleep(1000);
    running = false;
    await Promise.all([...writers, healthWatch]);

    // Every acknowledged write reads back from the new primary with its value.
    const lost: string[] = [];
    for (const [key, { value }] of acknowledged) {
      const answer = await request(server.url, "GET", `/v1/secret/data/${key}`, token);
      if (answer.status !== 200 || JSON.parse(answer.text).data?.data?.value !== value) lost.push(`${key}: ${answer.status}`);
    }
    const figures = {
      acknowledged: acknowledged.size,
      lost: lost.length,
      statuses: Object.fromEntries(statuses),
      promoteMs: promotedAt - promoteStarted,
      resumeAfterPromotionMs: firstAfter - promotedAt,
      resumeAfterPromoteStartMs: firstAfterStart - promoteStarted,
      outageMs: firstAfter - crashedAt,
      feedLiveAfterPromotionMs: feedLiveAt - promotedAt,
      healthPositions,
    };
    console.log(`[pg-failover] ${JSON.stringify(figures)}`);
    expect(lost).toEqual([]);
    expect(figures.resumeAfterPromotionMs).toBeLessThan(RESUME_BOUND_MS);
    expect(figures.feedLiveAfterPromotionMs).toBeLessThan(RESUME_BOUND_MS);
    expect([...statuses.keys()].filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(healthPositions).toEqual([1, 2]);
    const metrics = await request(server.url, "GET", "/v1/sys/metrics?format=prometheus", token);
    expect(metrics.text).toContain(`egide_storage_active_host{host="127.0.0.1:${replica.port}"} 1`);
    expect(metrics.text).not.toContain(`egide_storage_active_host{host="127.0.0.1:${primary.port}"}`);
  });
});
