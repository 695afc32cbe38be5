import Database from "better-sqlite3";
import { postgresServer, quoteIdentifier, withClient } from "@egide/test-postgres";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startTestServer, type TestServer } from "@egide/test-server";

// GET /v1/sys/metrics end to end: the Prometheus text is parsed and compared before and after
// real requests, on real SQLite and PostgreSQL servers. Storage errors are caused for real
// (a trigger that makes audit inserts fail); PostgreSQL connections are held for real (a
// table lock that blocks the server's statements).

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus' text exposition format: the samples, and the names that have # HELP / # TYPE. */
function parsePrometheus(text: string): { samples: Sample[]; described: Map<string, string> } {
  const samples: Sample[] = [];
  const described = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) described.set(type[1] as string, type[2] as string);
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[pair[1] as string] = pair[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return { samples, described };
}

type Metrics = ReturnType<typeof parsePrometheus>;

/** The sum of the samples of `name` whose labels include `labels`. */
function total(metrics: Metrics, name: string, labels: Record<string, string> = {}): number {
  return metrics.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

function has(metrics: Metrics, name: string, labels: Record<string, string> = {}): boolean {
  return metrics.samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

async function scrape(server: TestServer, token: string | undefined = server.rootToken): Promise<Metrics> {
  const reply = await fetch(`${server.url}/v1/sys/metrics?format=prometheus`, { headers: token ? { "x-vault-token": token } : {} });
  const text = await reply.text();
  expect(reply.status, text).toBe(200);
  expect(reply.headers.get("content-type")).toMatch(/^text\/plain/);
  return parsePrometheus(text);
}

async function kvWork(server: TestServer, key: string): Promise<void> {
  const token = server.rootToken;
  expect((await call(server.url, "POST", `/v1/secret/data/${key}`, { token, body: { data: { v: 1 } } })).status).toBe(200);
  expect((await call(server.url, "POST", `/v1/secret/data/${key}`, { token, body: { data: { v: 2 } } })).status).toBe(200);
  expect((await call(server.url, "GET", `/v1/secret/data/${key}`, { token })).status).toBe(200);
  expect((await call(server.url, "LIST", "/v1/secret/metadata/", { token })).status).toBe(200);
  expect((await call(server.url, "DELETE", `/v1/secret/metadata/${key}`, { token })).status).toBe(204);
}

const STORAGE_METRICS = ["egide_storage_operations_total", "egide_storage_operation_duration_seconds", "egide_storage_errors_total"];

/** Checks that operations and durations moved together for `backend`. */
function expectOperationsMoved(before: Metrics, after: Metrics, backend: string): void {
  for (const operation of ["get", "put", "transaction", "audit_append"]) {
    const ops =
      total(after, "egide_storage_operations_total", { backend, operation }) -
      total(before, "egide_storage_operations_total", { backend, operation });
    expect(ops, `${backend} ${operation} operations`).toBeGreaterThan(0);
    const count =
      total(after, "egide_storage_operation_duration_seconds_count", { backend, operation }) -
      total(before, "egide_storage_operation_duration_seconds_count", { backend, operation });
    expect(count, `${backend} ${operation} duration count`).toBe(ops);
    const sum =
      total(after, "egide_storage_operation_duration_seconds_sum", { backend, operation }) -
      total(before, "egide_storage_operation_duration_seconds_sum", { backend, operation });
    expect(sum, `${backend} ${operation} duration sum`).toBeGreaterThan(0);
    expect(total(after, "egide_storage_operation_duration_seconds_bucket", { backend, operation, le: "+Inf" })).toBe(
      total(after, "egide_storage_operation_duration_seconds_count", { backend, operation }),
    );
  }
  const listed = ["list", "list_page"].reduce(
    (sum, operation) =>
      sum +
      total(after, "egide_storage_operations_total", { backend, operation }) -
      total(before, "egide_storage_operations_total", { backend, operation }),
    0,
  );
  expect(listed, `${backend} list operations`).toBeGreaterThan(0);
}

describe("metrics over SQLite", () => {
  let ts: TestServer;

  beforeAll(async () => {
    ts = await startTestServer();
  }, 30_000);

  afterAll(async () => {
    await ts?.close();
  });

  async function auditDown(down: boolean): Promise<void> {
    const db = new Database(ts.sqlitePath as string, { fileMustExist: true, timeout: 5000 });
    try {
      db.exec(
        down
          ? "CREATE TRIGGER audit_down BEFORE INSERT ON egide_audit_log BEGIN SELECT RAISE(FAIL, 'audit down'); END;"
          : "DROP TRIGGER audit_down;",
      );
    } finally {
      db.close();
    }
  }

  it("needs a token with read on sys/metrics: 403 without one, with a wrong one or with only default", async () => {
    expect((await call(ts.url, "GET", "/v1/sys/metrics?format=prometheus")).status).toBe(403);
    expect((await call(ts.url, "GET", "/v1/sys/metrics?format=prometheus", { token: "egs.wrong" })).status).toBe(403);
    const plain = (await call(ts.url, "POST", "/v1/auth/token/create", { token: ts.rootToken, body: {} })).body.auth.client_token as string;
    expect((await call(ts.url, "GET", "/v1/sys/metrics?format=prometheus", { token: plain })).status).toBe(403);
    expect(
      (
        await call(ts.url, "PUT", "/v1/sys/policies/acl/metrics", {
          token: ts.rootToken,
          body: { policy: `path "sys/metrics" { capabilities = ["read"] }` },
        })
      ).status,
    ).toBe(204);
    const reader = (await call(ts.url, "POST", "/v1/auth/token/create", { token: ts.rootToken, body: { policies: ["metrics"] } })).body.auth
      .client_token as string;
    const metrics = await scrape(ts, reader);
    expect(metrics.samples.length).toBeGreaterThan(0);
  });

  it("answers the storage metrics in Prometheus' text format", async () => {
    const metrics = await scrape(ts);
    for (const name of STORAGE_METRICS) expect(metrics.described.has(name), name).toBe(true);
    expect(metrics.described.get("egide_storage_operations_total")).toBe("counter");
    expect(metrics.described.get("egide_storage_operation_duration_seconds")).toBe("histogram");
    expect(metrics.described.get("egide_storage_errors_total")).toBe("counter");
    expect(has(metrics, "egide_storage_operations_total", { backend: "sqlite" })).toBe(true);
    expect(total(metrics, "egide_seal_sealed")).toBe(0);
    // JSON without a format, 400 for an unknown one
    const json = await call(ts.url, "GET", "/v1/sys/metrics", { token: ts.rootToken });
    expect(json.status).toBe(200);
    expect(Array.isArray(json.body)).toBe(true);
    expect((json.body as Array<{ name: string }>).some((m) => m.name === "egide_storage_operations_total")).toBe(true);
    expect((await call(ts.url, "GET", "/v1/sys/metrics?format=xml", { token: ts.rootToken })).status).toBe(400);
  });

  it("operations, durations and HTTP request counts move after KV requests", async () => {
    const before = await scrape(ts);
    await kvWork(ts, "metrics-sqlite");
    const after = await scrape(ts);
    expectOperationsMoved(before, after, "sqlite");
    const http = (m: Metrics, method: string, status: string) => total(m, "egide_http_requests_total", { method, status });
    expect(http(after, "POST", "200") - http(before, "POST", "200")).toBe(2);
    expect(http(after, "LIST", "200") - http(before, "LIST", "200")).toBe(1);
    expect(http(after, "DELETE", "204") - http(before, "DELETE", "204")).toBe(1);
  });

  it("egide_storage_errors_total moves when a write's transaction fails (audit insert refused by a trigger)", async () => {
    const before = await scrape(ts);
    await auditDown(true);
    let status: number;
    try {
      status = (await call(ts.url, "POST", "/v1/secret/data/metrics-error", { token: ts.rootToken, body: { data: { v: 1 } } })).status;
    } finally {
      await auditDown(false);
    }
    expect(status).toBeGreaterThanOrEqual(500);
    const after = await scrape(ts);
    const errors = (m: Metrics) => total(m, "egide_storage_errors_total", { backend: "sqlite" });
    expect(errors(after)).toBeGreaterThan(errors(before));
    const failed = after.samples.filter((s) => s.name === "egide_storage_errors_total" && s.value > 0);
    expect(failed.every((s) => typeof s.labels.code === "string" && s.labels.code !== "")).toBe(true);
    expect(failed.map((s) => s.labels.operation)).toEqual(expect.arrayContaining(["transaction"]));
  });

  it("egide_storage_errors_total counts the failed audit write of a read (the audit store is storage too)", async () => {
    expect((await call(ts.url, "POST", "/v1/secret/data/metrics-read", { token: ts.rootToken, body: { data: { v: 1 } } })).status).toBe(
      200,
    );
    const before = await scrape(ts);
    await auditDown(true);
    let status: number;
    try {
      status = (await call(ts.url, "GET", "/v1/secret/data/metrics-read", { token: ts.rootToken })).status;
    } finally {
      await auditDown(false);
    }
    expect(status).toBe(500);
    const after = await scrape(ts);
    const errors = (m: Metrics) => total(m, "egide_storage_errors_total", { backend: "sqlite" });
    expect(errors(after)).toBeGreaterThan(errors(before));
  });

  it("unauthenticated access is allowed with [telemetry] unauthenticated_metrics_access = true", async () => {
    const open = await startTestServer({ extraToml: "[telemetry]\nunauthenticated_metrics_access = true\n" });
    try {
      const metrics = await scrape(open, undefined);
      for (const name of STORAGE_METRICS) expect(metrics.described.has(name), name).toBe(true);
      expect((await call(open.url, "GET", "/v1/sys/metrics?format=prometheus", { token: "egs.wrong" })).status).toBe(200);
      // the rest of the API still needs a token
      expect((await call(open.url, "GET", "/v1/secret/data/x")).status).toBe(403);
    } finally {
      await open.close();
    }
  });
});

describe("metrics over PostgreSQL", () => {
  let ts: TestServer;
  let database: string;
  let schema: string;

  beforeAll(async () => {
    ts = await startTestServer({ storage: "postgresql", extraToml: "[telemetry]\nunauthenticated_metrics_access = true\n" });
    ({ database, schema } = ts.postgres as { database: string; schema: string });
  }, 30_000);

  afterAll(async () => {
    await ts?.close();
  });

  it("answers the four storage metrics, egide_storage_connections_active included", async () => {
    const metrics = await scrape(ts, undefined);
    for (const name of [...STORAGE_METRICS, "egide_storage_connections_active"]) expect(metrics.described.has(name), name).toBe(true);
    expect(metrics.described.get("egide_storage_connections_active")).toBe("gauge");
    expect(has(metrics, "egide_storage_connections_active", { backend: "postgresql" })).toBe(true);
  });

  it("operations and durations move after KV requests", async () => {
    const before = await scrape(ts);
    await kvWork(ts, "metrics-pg");
    const after = await scrape(ts);
    expectOperationsMoved(before, after, "postgresql");
  });

  it("egide_storage_connections_active counts the connections held by blocked requests, and drops when they finish", async () => {
    const active = async () => total(await scrape(ts, undefined), "egide_storage_connections_active", { backend: "postgresql" });
    // Three secrets never read yet: each read misses the cache and needs a connection.
    for (const n of [1, 2, 3]) {
      expect((await call(ts.url, "POST", `/v1/secret/data/held/${n}`, { token: ts.rootToken, body: { data: { v: n } } })).status).toBe(200);
    }
    const idle = await active();
    const locker = new pg.Client({
      host: postgresServer.host,
      port: postgresServer.port,
      user: postgresServer.username,
      password: postgresServer.password,
      database,
    });
    await locker.connect();
    let blocked: Array<Promise<number>> = [];
    let peak = 0;
    try {
      await locker.query("BEGIN");
      await locker.query(`LOCK TABLE ${quoteIdentifier(schema)}.egide_storage IN ACCESS EXCLUSIVE MODE`);
      blocked = [1, 2, 3].map((n) => call(ts.url, "GET", `/v1/secret/data/held/${n}`, { token: ts.rootToken }).then((r) => r.status));
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && peak < 3) {
        peak = Math.max(peak, await active());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await locker.query("COMMIT").catch(() => undefined);
      await locker.end();
    }
    expect(await Promise.all(blocked)).toEqual([200, 200, 200]);
    expect(peak).toBeGreaterThanOrEqual(3);
    expect(peak).toBeGreaterThan(idle);
    const settled = await active();
    expect(settled).toBeLessThan(peak);
  });

  it("egide_storage_errors_total moves when a write's transaction fails (audit insert refused by a trigger)", async () => {
    const before = await scrape(ts, undefined);
    const s = quoteIdentifier(schema);
    await withClient(database, async (client) => {
      await client.query(
        `CREATE FUNCTION ${s}.audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$`,
      );
      await client.query(`CREATE TRIGGER audit_down BEFORE INSERT ON ${s}.egide_audit_log FOR EACH ROW EXECUTE FUNCTION ${s}.audit_down()`);
    });
    let status: number;
    try {
      status = (await call(ts.url, "POST", "/v1/secret/data/metrics-error", { token: ts.rootToken, body: { data: { v: 1 } } })).status;
    } finally {
      await withClient(database, async (client) => {
        await client.query(`DROP TRIGGER audit_down ON ${s}.egide_audit_log`);
        await client.query(`DROP FUNCTION ${s}.audit_down()`);
      });
    }
    expect(status).toBeGreaterThanOrEqual(500);
    const after = await scrape(ts, undefined);
    const errors = (m: Metrics) => total(m, "egide_storage_errors_total", { backend: "postgresql" });
    expect(errors(after)).toBeGreaterThan(errors(before));
  });
});
