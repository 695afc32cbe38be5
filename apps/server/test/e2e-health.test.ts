/**
 * End to end: `/v1/sys/health` over real HTTP in every state (uninitialised 501, sealed 503,
 * active 200) with Vault's query parameters and HEAD, over SQLite and PostgreSQL; then, on
 * PostgreSQL reached through a TCP proxy, while the database black-holes or drops connections:
 * health keeps answering fast (503, storage unhealthy) and recovers when traffic passes again.
 */
import { TcpProxy } from "@egide/test-postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type JsonBody, rawHttp, startTestServer, type TestServer } from "@egide/test-server";

const HEALTH_KEYS = [
  "cache",
  "initialized",
  "performance_standby",
  "replication_dr_mode",
  "replication_performance_mode",
  "sealed",
  "server_time_utc",
  "standby",
  "storage",
  "version",
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A HEAD request: status, headers and the body text (which must be empty). */
async function head(url: string, path: string): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`${url}${path}`, { method: "HEAD" });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

/** GET /v1/sys/health with a client deadline; returns the status, the body and how long it took. */
async function timedHealth(url: string, query = ""): Promise<{ status: number; body: JsonBody; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${url}/v1/sys/health${query}`, { signal: AbortSignal.timeout(5000) });
  const body = await response.json();
  return { status: response.status, body, ms: performance.now() - started };
}

describe.each([["sqlite"], ["postgresql"]] as const)("sys/health codes over %s", (storage) => {
  let server: TestServer;
  let url = "";
  let key = "";
  let rootToken = "";

  beforeAll(async () => {
    server = await startTestServer({ storage, uninitialized: true });
    url = server.url;
  }, 30_000);

  afterAll(async () => {
    await server?.close();
  });

  it("uninitialised: 501 with Vault's body; uninitcode changes the code; HEAD has no body", async () => {
    const health = await call(url, "GET", "/v1/sys/health");
    expect(health.status).toBe(501);
    expect(Object.keys(health.body).sort()).toEqual(HEALTH_KEYS);
    expect(health.body).toMatchObject({
      initialized: false,
      sealed: true,
      standby: false,
      performance_standby: false,
      replication_performance_mode: "disabled",
      replication_dr_mode: "disabled",
      version: expect.any(String),
      storage: { type: storage, status: "healthy", latency_ms: expect.any(Number) },
    });
    expect(Math.abs(health.body.server_time_utc - Date.now() / 1000)).toBeLessThan(10);
    expect(health.headers.get("cache-control")).toBe("no-store");

    expect((await call(url, "GET", "/v1/sys/health?uninitcode=200")).status).toBe(200);
    expect((await call(url, "GET", "/v1/sys/health?uninitcode=299")).status).toBe(299);
    // Codes for other states do not apply.
    expect((await call(url, "GET", "/v1/sys/health?sealedcode=200&activecode=299&standbyok=true")).status).toBe(501);

    const response = await head(url, "/v1/sys/health");
    expect(response.status).toBe(501);
    expect(response.text).toBe("");
    const mapped = await head(url, "/v1/sys/health?uninitcode=204");
    expect(mapped.status).toBe(204);
    expect(mapped.text).toBe("");
  });

  it("sealed: 503; sealedcode changes the code; standbyok does not make a sealed server healthy; HEAD has no body", async () => {
    const init = await call(url, "PUT", "/v1/sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
    expect(init.status).toBe(200);
    key = init.body.keys_base64[0];
    rootToken = init.body.root_token;

    const health = await call(url, "GET", "/v1/sys/health");
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ initialized: true, sealed: true, standby: false });
    expect((await call(url, "GET", "/v1/sys/health?sealedcode=200")).status).toBe(200);
    expect((await call(url, "GET", "/v1/sys/health?sealedcode=429")).status).toBe(429);
    expect((await call(url, "GET", "/v1/sys/health?standbyok=true")).status).toBe(503);
    expect((await call(url, "GET", "/v1/sys/health?perfstandbyok=true&activecode=200&uninitcode=200")).status).toBe(503);

    const response = await head(url, "/v1/sys/health");
    expect(response.status).toBe(503);
    expect(response.text).toBe("");
    const mapped = await head(url, "/v1/sys/health?sealedcode=200");
    expect(mapped.status).toBe(200);
    expect(mapped.text).toBe("");
  });

  it("active: 200 with the storage object; activecode changes it; standbyok and standbycode change nothing; HEAD has no body", async () => {
    expect((await call(url, "PUT", "/v1/sys/unseal", { body: { key } })).body.sealed).toBe(false);
    const health = await call(url, "GET", "/v1/sys/health");
    expect(health.status).toBe(200);
    expect(Object.keys(health.body).sort()).toEqual(HEALTH_KEYS);
    expect(health.body).toMatchObject({ initialized: true, sealed: false, standby: false, performance_standby: false });
    expect(health.body.storage).toEqual({ type: storage, status: "healthy", latency_ms: expect.any(Number) });
    // Both shipped backends have a change feed, live once the server runs: the cache serves reads.
    expect(health.body.cache).toEqual({ enabled: true, feed: "live", serving: true });

    for (const [query, status] of [
      ["?standbyok=true", 200],
      ["?standbyok=false", 200],
      ["?perfstandbyok=true", 200],
      ["?standbycode=299", 200],
      ["?performancestandbycode=299", 200],
      ["?drsecondarycode=299", 200],
      ["?sealedcode=500&uninitcode=500", 200],
      ["?activecode=299", 299],
      ["?activecode=429&standbyok=true", 429],
    ] as const) {
      const response = await call(url, "GET", `/v1/sys/health${query}`);
      expect(response.status, query).toBe(status);
      expect(response.body.sealed, query).toBe(false);
    }

    const response = await head(url, "/v1/sys/health");
    expect(response.status).toBe(200);
    expect(response.text).toBe("");
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect((await head(url, "/v1/sys/health?activecode=299")).status).toBe(299);
  });

  it("needs no token, and a bad one changes nothing", async () => {
    expect((await call(url, "GET", "/v1/sys/health", { token: "not-a-token" })).status).toBe(200);
    expect((await call(url, "GET", "/v1/sys/health", { token: rootToken })).status).toBe(200);
  });

  it("a code that is not an HTTP status is 400, never a 500", async () => {
    for (const query of ["?activecode=abc", "?activecode=99", "?activecode=600", "?activecode=2.5", "?activecode=-1"]) {
      const response = await call(url, "GET", `/v1/sys/health${query}`);
      expect(response.status, query).toBeGreaterThanOrEqual(400);
      expect(response.status, query).toBeLessThan(500);
    }
    expect((await call(url, "GET", "/v1/sys/health?activecode=abc")).body.errors).toEqual([
      "activecode must be an HTTP status code from 200 to 599",
    ]);
    expect((await call(url, "GET", "/v1/sys/health")).status).toBe(200);
  });

  it("never answers a 1xx status as the final answer (L1: 101 Switching Protocols would desync a proxy)", async () => {
    for (const name of [
      "activecode",
      "sealedcode",
      "uninitcode",
      "storageunhealthycode",
      "standbycode",
      "drsecondarycode",
      "performancestandbycode",
    ]) {
      for (const code of [100, 101, 103, 199]) {
        const response = await rawHttp(url, `GET /v1/sys/health?${name}=${code} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        expect(response.status, `${name}=${code}`).toBe(400);
        expect(response.raw.startsWith("HTTP/1.1 1"), `${name}=${code}`).toBe(false);
      }
    }
    expect((await call(url, "GET", "/v1/sys/health?activecode=200")).status).toBe(200);
    expect((await call(url, "GET", "/v1/sys/health?activecode=599")).status).toBe(599);
  });

  it("sealed again (PUT sys/seal): back to 503", async () => {
    expect((await call(url, "PUT", "/v1/sys/seal", { token: rootToken })).status).toBe(204);
    expect((await call(url, "GET", "/v1/sys/health")).status).toBe(503);
    expect((await head(url, "/v1/sys/health")).status).toBe(503);
  });
});

/**
 * Run twice: with the default configuration, where health checks are audited (`[audit]
 * health_checks = true`), and with `health_checks = false`. The second shows the background
 * probe itself works; the first shows that auditing health requests never holds the answer
 * (their rows are written without waiting: health must answer while the database does not).
 */
describe.each([
  ["with the default config ([audit] health_checks = true), health is audited without waiting on the database", ""],
  ["with [audit] health_checks = false", "[audit]\nhealth_checks = false\n"],
])("sys/health while PostgreSQL is unreachable (TCP proxy), %s", (_name, auditToml) => {
  let proxy: TcpProxy;
  let server: TestServer;
  let url = "";
  let token = "";

  beforeAll(async () => {
    proxy = new TcpProxy({ targetHost: process.env.PGHOST || "127.0.0.1", targetPort: Number(process.env.PGPORT || 5432) });
    const { port } = await proxy.start();
    server = await startTestServer({
      storage: "postgresql",
      postgresHostPort: { host: "127.0.0.1", port },
      storageToml: 'health_interval = "200ms"\nhealth_timeout = "300ms"',
      postgresToml: 'connection_timeout = "1s"\noperation_timeout = "1s"\nssl_mode = "disable"',
      extraToml: auditToml,
    });
    url = server.url;
    token = server.rootToken;
  }, 30_000);

  afterAll(async () => {
    // Whatever state a failed test left: make every call fail fast so close() cannot hang.
    proxy?.cut();
    await server?.close();
    await proxy?.close();
  });

  /**
   * Polls health for `durationMs` (each answer is timed); stops early once `until` holds for
   * an answer (when given).
   */
  async function poll(durationMs: number, until?: (answer: { status: number; body: JsonBody }) => boolean) {
    const answers: Array<{ status: number; body: JsonBody; ms: number }> = [];
    const deadline = performance.now() + durationMs;
    while (performance.now() < deadline) {
      const answer = await timedHealth(url);
      answers.push(answer);
      if (until?.(answer)) break;
      await sleep(50);
    }
    return answers;
  }

  const unhealthy = (answer: { status: number; body: JsonBody }) => answer.status === 503 && answer.body.storage?.status === "unhealthy";
  const healthy = (answer: { status: number; body: JsonBody }) => answer.status === 200 && answer.body.storage?.status === "healthy";
  const describeAnswer = (answer: { status: number; body: JsonBody; ms: number }) =>
    `${Math.round(answer.ms)} ms: ${answer.status} ${JSON.stringify(answer.body.storage ?? answer.body)}`;
  const slow = (answers: Array<{ status: number; body: JsonBody; ms: number }>) =>
    answers.filter((answer) => answer.ms > 1000).map(describeAnswer);
  const notUnhealthy = (answers: Array<{ status: number; body: JsonBody; ms: number }>) =>
    answers.filter((answer) => !unhealthy(answer)).map(describeAnswer);

  it("is 200 and healthy while traffic passes", async () => {
    const answer = await timedHealth(url);
    expect(answer.status).toBe(200);
    expect(answer.body.storage).toMatchObject({ type: "postgresql", status: "healthy" });
    expect((await call(url, "PUT", "/v1/secret/data/app/db", { token, body: { data: { v: 1 } } })).status).toBe(200);
    expect(proxy.acceptedConnections).toBeGreaterThan(0);
  });

  it("black hole: health keeps answering within 1 s, turns 503 with storage unhealthy, and stays so", async () => {
    proxy.blackhole();
    const before = await poll(3000, unhealthy);
    expect(slow(before), "answers slower than 1 s").toEqual([]);
    expect(unhealthy(before.at(-1)!), `last answer: ${describeAnswer(before.at(-1)!)}`).toBe(true);

    const after = await poll(1500);
    expect(slow(after), "answers slower than 1 s").toEqual([]);
    expect(notUnhealthy(after)).toEqual([]);
    expect(after.at(-1)!.body).toMatchObject({
      initialized: true,
      sealed: false,
      storage: { type: "postgresql", status: "unhealthy", error: expect.any(String) },
    });

    // HEAD and the storageunhealthycode parameter answer from the same probe result.
    const response = await head(url, "/v1/sys/health");
    expect(response.status).toBe(503);
    expect(response.text).toBe("");
    expect((await timedHealth(url, "?storageunhealthycode=299")).status).toBe(299);
  }, 15_000);

  it("black hole: a KV read answers 503 (storage unavailable, try again) within its deadline, and the server does not crash", async () => {
    const started = performance.now();
    const response = await fetch(`${url}/v1/secret/data/app/db`, {
      headers: { "x-vault-token": token },
      signal: AbortSignal.timeout(8000),
    });
    const ms = performance.now() - started;
    expect(response.status, await response.text()).toBe(503);
    expect(ms).toBeLessThan(5000);
  }, 15_000);

  it("connections cut: health stays fast and unhealthy", async () => {
    proxy.cut();
    const answers = await poll(1500);
    expect(slow(answers), "answers slower than 1 s").toEqual([]);
    expect(notUnhealthy(answers)).toEqual([]);
  }, 15_000);

  it("recovers to 200 and healthy once traffic passes again, and serves secrets", async () => {
    proxy.pass();
    const answers = await poll(8000, healthy);
    expect(healthy(answers.at(-1)!), `last answer: ${describeAnswer(answers.at(-1)!)}`).toBe(true);
    expect(slow(answers), "answers slower than 1 s").toEqual([]);
    // The pool may need a moment to replace its dead connections.
    let read = await call(url, "GET", "/v1/secret/data/app/db", { token });
    for (let attempt = 0; read.status !== 200 && attempt < 20; attempt++) {
      await sleep(250);
      read = await call(url, "GET", "/v1/secret/data/app/db", { token });
    }
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.body.data.data).toEqual({ v: 1 });
    expect((await call(url, "PUT", "/v1/secret/data/app/db", { token, body: { data: { v: 2 } } })).status).toBe(200);
  }, 20_000);
});
