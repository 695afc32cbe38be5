/**
 * End to end: PostgreSQL faults under load, at the level of the whole server (issue 15, point 2).
 *
 * A throwaway PostgreSQL cluster of this file's own (initdb, its own loopback port: the machine's
 * shared server is never touched), reached through a TCP proxy, and a real server on it, under
 * continuous load: a few KV writers of unique secrets (each acknowledged write recorded with its
 * version and value) and readers of acknowledged secrets. Each test injects one fault:
 *
 * 1. an immediate shutdown (a crash: no checkpoint) and a restart of the cluster;
 * 2. every backend terminated (`pg_terminate_backend`), again and again for a while;
 * 3. the TCP path cut (connections reset), then black-holed (nothing passes, sockets stay open),
 *    then restored;
 * 4. a write stuck behind a lock held by another session, past the server's `statement_timeout`.
 *
 * What must hold, and is asserted:
 * - every answer is a 200 or a 503 with Vault's error shape (`{"errors": [...]}`): no 500, no
 *   stack, no driver message naming hosts or ports, and a storage message; every answer arrives
 *   within {@link ANSWER_BOUND_MS} (clients give up after {@link CLIENT_DEADLINE_MS}: no hang);
 * - the process keeps serving: `/v1/sys/health` answers within a second throughout; while the
 *   database is down (faults 1 and 3) it reports the storage unhealthy and the change feed not
 *   live (`cache.feed`);
 * - once PostgreSQL is back (the restart returned, the proxy passes, the lock is released), the
 *   server recovers by itself within {@link RECOVERY_BOUND_MS}: a write succeeds, health is 200
 *   and healthy, the feed is live again;
 * - no acknowledged write is lost: every one reads back at its version with its value.
 *
 * The figures (503 latencies, recovery times, acknowledged and lost writes) are printed per fault.
 */
import { dirname, join } from "node:path";
import { startThrowawayCluster, TcpProxy, type ThrowawayCluster } from "@egide/test-postgres";
import { startTestServer, type TestServer } from "@egide/test-server";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** Clients abort a request that has no answer after this long: an abort is a hang, and fails the test. */
const CLIENT_DEADLINE_MS = 8_000;
/** Every answer, 503s included, must arrive within this long. */
const ANSWER_BOUND_MS = 5_000;
/** Health must answer within this long, whatever the database does. */
const HEALTH_BOUND_MS = 1_000;
/** The server must be back (writes, health, feed) within this long of PostgreSQL being back. */
const RECOVERY_BOUND_MS = 5_000;
/** How long each fault lasts. */
const FAULT_MS = 2_500;
const WRITERS = 4;
const READERS = 2;
/** The server's statement_timeout (fault 4 waits past it). */
const STATEMENT_TIMEOUT = "1s";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One answered (or abandoned) request. */
interface Outcome {
  what: string;
  /** The HTTP status, or "aborted" (no answer within the client deadline) or "failed" (no HTTP answer at all). */
  status: number | "aborted" | "failed";
  ms: number;
  /** When it was sent (performance.now()). */
  sentAt: number;
  text: string;
}

/** One health answer. */
interface HealthSample {
  at: number;
  ms: number;
  status: number | "aborted" | "failed";
  storage?: string;
  feed?: string;
}

async function timedRequest(url: string, method: string, path: string, token: string, body?: unknown): Promise<Outcome> {
  const sentAt = performance.now();
  try {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { "x-vault-token": token, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(CLIENT_DEADLINE_MS),
    });
    const text = await response.text();
    return { what: `${method} ${path}`, status: response.status, ms: performance.now() - sentAt, sentAt, text };
  } catch (error) {
    const aborted = (error as Error)?.name === "TimeoutError" || (error as Error)?.name === "AbortError";
    return {
      what: `${method} ${path}`,
      status: aborted ? "aborted" : "failed",
      ms: performance.now() - sentAt,
      sentAt,
      text: String(error),
    };
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

const round = (ms: number) => Math.round(ms);

describe("PostgreSQL faults under load, at the server level (a throwaway cluster)", () => {
  let cluster: ThrowawayCluster;
  let proxy: TcpProxy;
  let server: TestServer;
  let url = "";
  let token = "";
  /** Every acknowledged write of the whole file: key → the version and value the server acknowledged. */
  const acknowledged = new Map<string, { version: number; value: string }>();
  /** Acknowledged writes that read back wrong or not at all. */
  const lost: string[] = [];

  /** A raw connection to the cluster itself (not through the proxy), for the test's own SQL. */
  async function admin(): Promise<pg.Client> {
    const client = new pg.Client({
      host: cluster.host,
      port: cluster.port,
      user: "postgres",
      database: "egide",
      connectionTimeoutMillis: 5000,
    });
    client.on("error", () => undefined);
    await client.connect();
    return client;
  }

  beforeAll(async () => {
    cluster = await startThrowawayCluster();
    const setup = new pg.Client({ host: cluster.host, port: cluster.port, user: "postgres", database: "postgres" });
    await setup.connect();
    await setup.query("CREATE DATABASE egide");
    await setup.end();
    proxy = new TcpProxy({ targetHost: cluster.host, targetPort: cluster.port });
    const { port } = await proxy.start();
    server = await startTestServer({
      storage: "postgresql",
      label: "pg-faults",
      // A database of the throwaway cluster: startTestServer neither creates nor drops it.
      postgres: { database: "egide", schema: "egide" },
      postgresHostPort: { host: "127.0.0.1", port },
      storageToml: 'health_interval = "200ms"\nhealth_timeout = "300ms"',
      postgresToml: `connection_timeout = "1s"\noperation_timeout = "2s"\nstatement_timeout = "${STATEMENT_TIMEOUT}"\nssl_mode = "disable"`,
    });
    url = server.url;
    ({ rootToken: token } = await server.server.initialize({ shares: 1, threshold: 1 }, true));
  }, 120_000);

  afterAll(async () => {
    // Whatever a failed test left: PostgreSQL up and traffic passing, so close() does not wait on it.
    if (cluster && !cluster.running())
      await cluster.pgCtl(["-l", join(dirname(cluster.dataDir), "server.log"), "-w", "-t", "60", "start"]).catch(() => undefined);
    proxy?.pass();
    await server?.close();
    await proxy?.close();
    cluster?.destroy();
    // The file's totals.
    console.log(`[pg-faults] total: ${acknowledged.size} acknowledged writes, ${lost.length} lost`);
  }, 120_000);

  /** Continuous load until stopped: writers of unique secrets and readers of acknowledged ones. */
  function startLoad(label: string) {
    const outcomes: Outcome[] = [];
    const mismatched: string[] = [];
    let running = true;
    const writer = async (w: number) => {
      for (let n = 0; running; n++) {
        const key = `load/${label}/w${w}-${n}`;
        const value = `${label}-${w}-${n}-${Math.random().toString(36).slice(2)}`;
        const outcome = await timedRequest(url, "POST", `/v1/secret/data/${key}`, token, { data: { value } });
        outcomes.push(outcome);
        if (outcome.status === 200) acknowledged.set(key, { version: JSON.parse(outcome.text).data.version, value });
        await sleep(outcome.status === 200 ? 10 : 50);
      }
    };
    const reader = async () => {
      while (running) {
        const keys = [...acknowledged.keys()];
        const key = keys[Math.floor(Math.random() * keys.length)];
        if (key === undefined) {
          await sleep(50);
          continue;
        }
        const expected = acknowledged.get(key);
        const outcome = await timedRequest(url, "GET", `/v1/secret/data/${key}`, token);
        outcomes.push(outcome);
        if (outcome.status === 200) {
          const data = JSON.parse(outcome.text).data;
          if (data.data.value !== expected?.value || data.metadata.version !== expected?.version)
            mismatched.push(`${key}: ${outcome.text}`);
        }
        await sleep(outcome.status === 200 ? 10 : 50);
      }
    };
    const workers = [...Array.from({ length: WRITERS }, (_, w) => writer(w)), ...Array.from({ length: READERS }, () => reader())];
    return {
      outcomes,
      mismatched,
      async stop() {
        running = false;
        await Promise.all(workers);
      },
    };
  }

  /** Polls health every 50 ms until stopped, each answer timed. */
  function watchHealth() {
    const samples: HealthSample[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const at = performance.now();
        try {
          const response = await fetch(`${url}/v1/sys/health`, { signal: AbortSignal.timeout(CLIENT_DEADLINE_MS) });
          const body = (await response.json()) as { storage?: { status?: string }; cache?: { feed?: string } };
          samples.push({ at, ms: performance.now() - at, status: response.status, storage: body.storage?.status, feed: body.cache?.feed });
        } catch (error) {
          const aborted = (error as Error)?.name === "TimeoutError";
          samples.push({ at, ms: performance.now() - at, status: aborted ? "aborted" : "failed" });
        }
        await sleep(50);
      }
    })();
    return {
      samples,
      async stop() {
        running = false;
        await loop;
      },
    };
  }

  /** Writes until one succeeds; returns when (performance.now()) it was answered. */
  async function firstSuccessfulWrite(label: string, deadlineMs: number): Promise<number> {
    const until = performance.now() + deadlineMs;
    for (let n = 0; performance.now() < until; n++) {
      const outcome = await timedRequest(url, "POST", `/v1/secret/data/probe/${label}-${n}`, token, { data: { n } });
      if (outcome.status === 200) return performance.now();
      await sleep(50);
    }
    return Number.POSITIVE_INFINITY;
  }

  /** Waits until a health sample at or after `since` satisfies `ok`; returns when it was taken, or Infinity. */
  async function firstHealth(
    health: { samples: HealthSample[] },
    since: number,
    ok: (sample: HealthSample) => boolean,
    deadlineMs: number,
  ) {
    const until = performance.now() + deadlineMs;
    while (performance.now() < until) {
      const sample = health.samples.find((s) => s.at >= since && ok(s));
      if (sample) return sample.at;
      await sleep(25);
    }
    return Number.POSITIVE_INFINITY;
  }

  /** Every acknowledged write so far reads back at its version with its value. */
  async function readBackAll(): Promise<void> {
    const entries = [...acknowledged.entries()];
    const pending = [...entries];
    const check = async () => {
      for (let entry = pending.pop(); entry; entry = pending.pop()) {
        const [key, expected] = entry;
        const outcome = await timedRequest(url, "GET", `/v1/secret/data/${key}`, token);
        const data = outcome.status === 200 ? JSON.parse(outcome.text).data : undefined;
        if (data?.data?.value !== expected.value || data?.metadata?.version !== expected.version) {
          lost.push(`${key}: expected v${expected.version} ${expected.value}, got ${outcome.status} ${outcome.text.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, check));
  }

  /**
   * Runs one fault under load and checks everything the file's comment promises. `inject`
   * starts the fault; `restore` ends it and resolves once PostgreSQL is back. `down` says
   * whether PostgreSQL is unreachable during the fault (then health must say so).
   */
  async function underLoad(
    name: string,
    fault: { inject(): Promise<void>; restore(): Promise<void>; down: boolean; expect503: boolean; code?: string },
  ): Promise<void> {
    const ackedBefore = acknowledged.size;
    const health = watchHealth();
    const load = startLoad(name);
    try {
      // Some traffic before the fault.
      await sleep(1000);
      const faultAt = performance.now();
      await fault.inject();
      await sleep(FAULT_MS);
      await fault.restore();
      const backAt = performance.now();

      const [writeAt, healthyAt, liveAt] = await Promise.all([
        firstSuccessfulWrite(name, RECOVERY_BOUND_MS + 5000),
        firstHealth(health, backAt, (s) => s.status === 200 && s.storage === "healthy", RECOVERY_BOUND_MS + 5000),
        firstHealth(health, backAt, (s) => s.feed === "live", RECOVERY_BOUND_MS + 5000),
      ]);
      // Load after recovery too: what is acknowledged now must not be lost either.
      await sleep(1000);
      await load.stop();
      await health.stop();

      const during = load.outcomes.filter((o) => o.sentAt >= faultAt && o.sentAt <= backAt);
      const unavailable = load.outcomes.filter((o) => o.status === 503);
      const latencies503 = unavailable.map((o) => o.ms);
      const unhealthyAt = health.samples.find((s) => s.at >= faultAt && s.storage === "unhealthy")?.at;
      const notLiveAt = health.samples.find((s) => s.at >= faultAt && s.feed !== undefined && s.feed !== "live")?.at;
      const figures = {
        requests: load.outcomes.length,
        requestsDuringFault: during.length,
        ok: load.outcomes.filter((o) => o.status === 200).length,
        unavailable503: unavailable.length,
        latency503Ms: {
          p50: round(percentile(latencies503, 50)),
          p95: round(percentile(latencies503, 95)),
          max: round(Math.max(0, ...latencies503)),
        },
        maxLatencyMs: round(Math.max(...load.outcomes.map((o) => o.ms))),
        healthMaxMs: round(Math.max(...health.samples.map((s) => s.ms))),
        unhealthyAfterMs: unhealthyAt === undefined ? null : round(unhealthyAt - faultAt),
        feedNotLiveAfterMs: notLiveAt === undefined ? null : round(notLiveAt - faultAt),
        recoveryMs: { write: round(writeAt - backAt), health: round(healthyAt - backAt), feed: round(liveAt - backAt) },
        acknowledgedWrites: acknowledged.size - ackedBefore,
        messages503: [...new Set(unavailable.map((o) => o.text))],
      };
      console.log(`[pg-faults] ${name}: ${JSON.stringify(figures)}`);

      // Only 200 and 503, each within its bound: no 500, no hang, no dropped connection.
      const wrong = load.outcomes.filter((o) => o.status !== 200 && o.status !== 503);
      expect(wrong.map((o) => `${o.what}: ${o.status} after ${round(o.ms)} ms: ${o.text.slice(0, 300)}`)).toEqual([]);
      const slow = load.outcomes.filter((o) => o.ms > ANSWER_BOUND_MS);
      expect(slow.map((o) => `${o.what}: ${o.status} after ${round(o.ms)} ms`)).toEqual([]);
      // 503s in Vault's shape, with a storage message, and nothing of the driver's.
      for (const outcome of unavailable) {
        const body = JSON.parse(outcome.text) as unknown;
        expect(Object.keys(body as object)).toEqual(["errors"]);
        const errors = (body as { errors: unknown }).errors;
        expect(Array.isArray(errors) && errors.length > 0 && errors.every((e) => typeof e === "string")).toBe(true);
        expect((errors as string[]).join(" ")).toMatch(/storage/);
        expect(outcome.text).not.toMatch(/127\.0\.0\.1|localhost|ECONN|SQLSTATE|postgres|terminat|\bat .*\.[jt]s:\d+/i);
        expect(outcome.text).not.toContain(String(cluster.port));
        expect(outcome.text).not.toContain(String(proxy.port));
      }
      if (fault.expect503) expect(unavailable.length, "no request failed while the database was away").toBeGreaterThan(0);
      if (fault.code) expect(figures.messages503.join("\n")).toContain(`(storage error ${fault.code})`);
      // Reads that answered 200 answered what was written.
      expect(load.mismatched).toEqual([]);
      // Health answered fast throughout, and said what happened.
      expect(
        health.samples.filter((s) => typeof s.status !== "number" || s.ms > HEALTH_BOUND_MS).map((s) => `${s.status} ${round(s.ms)} ms`),
      ).toEqual([]);
      if (fault.down) {
        expect(unhealthyAt, "health never reported the storage unhealthy").toBeDefined();
        expect(notLiveAt, "health never reported the change feed not live").toBeDefined();
        // Unhealthy health answers are 503.
        expect(health.samples.filter((s) => s.storage === "unhealthy" && s.status !== 503)).toEqual([]);
      }
      // Back by itself within the bound.
      expect(figures.recoveryMs.write).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
      expect(figures.recoveryMs.health).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
      expect(figures.recoveryMs.feed).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
      expect(figures.acknowledgedWrites).toBeGreaterThan(0);
      // Nothing acknowledged is lost.
      await readBackAll();
      expect(lost).toEqual([]);
    } finally {
      await load.stop();
      await health.stop();
    }
  }

  it("an immediate shutdown and restart of PostgreSQL under load", async () => {
    await underLoad("immediate-restart", {
      down: true,
      expect503: true,
      inject: () => cluster.pgCtl(["-m", "immediate", "-w", "-t", "60", "stop"]),
      restore: () => cluster.pgCtl(["-l", join(dirname(cluster.dataDir), "server.log"), "-w", "-t", "60", "start"]),
    });
  }, 90_000);

  it("every backend terminated (pg_terminate_backend), again and again for a while", async () => {
    const client = await admin();
    let terminating = true;
    let rounds = 0;
    let terminated = 0;
    let loop: Promise<void> = Promise.resolve();
    try {
      await underLoad("terminate-backends", {
        down: false,
        // The server reconnects between two rounds: some requests may get through, none must fail badly.
        expect503: false,
        async inject() {
          loop = (async () => {
            while (terminating) {
              const result = await client.query<{ n: string }>(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
              );
              rounds += 1;
              terminated += Number(result.rows[0]?.n ?? 0);
              await sleep(100);
            }
          })();
        },
        async restore() {
          terminating = false;
          await loop;
        },
      });
    } finally {
      terminating = false;
      await loop.catch(() => undefined);
      await client.end().catch(() => undefined);
    }
    console.log(`[pg-faults] terminate-backends: ${rounds} rounds, ${terminated} backends terminated`);
    expect(terminated).toBeGreaterThan(0);
  }, 90_000);

  it("the TCP path cut, then black-holed, then restored (TcpProxy)", async () => {
    await underLoad("tcp-cut-blackhole", {
      down: true,
      expect503: true,
      async inject() {
        proxy.cut();
        // Half the fault with connections reset, half with a silent black hole.
        setTimeout(() => {
          if (proxy.mode === "cut") proxy.blackhole();
        }, FAULT_MS / 2).unref();
      },
      async restore() {
        proxy.pass();
      },
    });
  }, 90_000);

  it("a write stuck behind another session's lock past statement_timeout", async () => {
    const client = await admin();
    try {
      await underLoad("statement-timeout", {
        down: false,
        expect503: true,
        code: "TIMEOUT",
        async inject() {
          // Every read and write of the storage table waits on this lock until statement_timeout.
          await client.query("BEGIN");
          await client.query("LOCK TABLE egide.egide_storage IN ACCESS EXCLUSIVE MODE");
        },
        async restore() {
          await client.query("COMMIT");
        },
      });
    } finally {
      await client.query("ROLLBACK").catch(() => undefined);
      await client.end().catch(() => undefined);
    }
  }, 90_000);
});
