import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quoteIdentifier, withClient } from "@egide/test-postgres";
import { call as rawCall, startTestServer, type TestServer } from "@egide/test-server";
import { CAS_MISMATCH } from "../src/kv/kv-v2-engine.js";

// Two server instances on one PostgreSQL database and schema, each a real server on its own
// port: what one does, the other sees (through the change feed, within the consistency promise of docs/architecture.md), writes
// with check-and-set split across both never lose an update, and a key rotation on one is
// followed by the other.

type Reply = Awaited<ReturnType<typeof rawCall>>;

// Every HTTP request of this file, to compare with the shared audit table at the end.
let requests = 0;
const call: typeof rawCall = (...args) => {
  requests++;
  return rawCall(...args);
};

let a: TestServer;
let b: TestServer;
let root: string;

const on = (
  server: TestServer,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> => call(server.url, method, path, { token: root, ...options });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function putPolicy(server: TestServer, name: string, policy: string): Promise<void> {
  const reply = await on(server, "PUT", `/v1/sys/policies/acl/${name}`, { body: { policy } });
  expect(reply.status, JSON.stringify(reply.body)).toBe(204);
}

async function createToken(server: TestServer, policies: string[]): Promise<string> {
  const reply = await on(server, "POST", "/v1/auth/token/create", { body: { policies } });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body.auth.client_token as string;
}

/** Polls `probe` until it answers `want`; returns how long that took (ms), or Infinity after `limitMs`. */
async function timeUntil(probe: () => Promise<number>, want: number, limitMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if ((await probe()) === want) return performance.now() - started;
    if (performance.now() - started > limitMs) return Number.POSITIVE_INFINITY;
    await sleep(10);
  }
}

beforeAll(async () => {
  a = await startTestServer({ storage: "postgresql" });
  root = a.rootToken;
  b = await startTestServer({ storage: "postgresql", postgres: a.postgres as { database: string; schema: string } });
  // B opens the installation A initialised: initialised, sealed, and refusing data requests
  const status = await call(b.url, "GET", "/v1/sys/seal-status");
  expect(status.body).toMatchObject({ initialized: true, sealed: true });
  expect((await on(b, "GET", "/v1/secret/data/anything")).status).toBe(503);
  for (const key of a.keys) {
    const unseal = await call(b.url, "PUT", "/v1/sys/unseal", { body: { key: key.toString("hex") } });
    expect(unseal.status).toBe(200);
  }
  expect((await call(b.url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(false);
}, 30_000);

afterAll(async () => {
  await b?.close();
  await a?.close();
});

describe("two instances on one PostgreSQL schema", () => {
  it("a secret written on one is read on the other, both ways", async () => {
    expect((await on(a, "POST", "/v1/secret/data/shared/one", { body: { data: { from: "a" } } })).status).toBe(200);
    expect((await on(b, "GET", "/v1/secret/data/shared/one")).body.data.data).toEqual({ from: "a" });
    expect((await on(b, "POST", "/v1/secret/data/shared/one", { body: { data: { from: "b" } } })).status).toBe(200);
    const onA = await on(a, "GET", "/v1/secret/data/shared/one");
    expect(onA.body.data.data).toEqual({ from: "b" });
    expect(onA.body.data.metadata.version).toBe(2);
  });

  it("a token created on A works on B at once (and one created on B on A); a revocation on A applies on B at once", async () => {
    await putPolicy(a, "shared-read", `path "secret/data/shared/*" { capabilities = ["read"] }`);
    const fromA = await on(a, "POST", "/v1/auth/token/create", { body: { policies: ["shared-read"] } });
    const token = fromA.body.auth.client_token as string;
    const self = await on(b, "GET", "/v1/auth/token/lookup-self", { token });
    expect(self.status).toBe(200);
    expect(self.body.data.accessor).toBe(fromA.body.auth.accessor);
    expect((await on(b, "GET", "/v1/secret/data/shared/one", { token })).status).toBe(200);

    const fromB = await createToken(b, ["shared-read"]);
    expect((await on(a, "GET", "/v1/secret/data/shared/one", { token: fromB })).status).toBe(200);

    expect((await on(a, "POST", "/v1/auth/token/revoke", { body: { token } })).status).toBe(204);
    expect((await on(b, "GET", "/v1/secret/data/shared/one", { token })).status).toBe(403);
    expect((await on(b, "GET", "/v1/auth/token/lookup-self", { token })).status).toBe(403);
  });

  it("a policy created on A applies on B", async () => {
    await putPolicy(a, "new-on-a", `path "secret/data/fresh/*" { capabilities = ["read"] }`);
    expect((await on(a, "POST", "/v1/secret/data/fresh/x", { body: { data: { v: 1 } } })).status).toBe(200);
    const token = await createToken(a, ["new-on-a"]);
    expect((await on(b, "GET", "/v1/secret/data/fresh/x", { token })).status).toBe(200);
    expect((await on(b, "POST", "/v1/secret/data/fresh/x", { token, body: { data: { v: 2 } } })).status).toBe(403);
    expect((await on(b, "GET", "/v1/sys/policies/acl/new-on-a")).body.data.policy).toContain("secret/data/fresh/*");
  });

  it("a change to an existing policy on A is seen on B within 1 second (deny, grant again, delete)", async () => {
    await putPolicy(a, "changing", `path "secret/data/changing/*" { capabilities = ["read"] }`);
    expect((await on(a, "POST", "/v1/secret/data/changing/x", { body: { data: { v: 1 } } })).status).toBe(200);
    const token = await createToken(a, ["changing"]);
    const readOnB = async () => (await on(b, "GET", "/v1/secret/data/changing/x", { token })).status;
    // B has the policy cached now
    expect(await readOnB()).toBe(200);
    expect(await readOnB()).toBe(200);

    await putPolicy(a, "changing", `path "secret/data/changing/*" { capabilities = ["deny"] }`);
    expect((await on(a, "GET", "/v1/secret/data/changing/x", { token })).status).toBe(403);
    const denied = await timeUntil(readOnB, 403, 3000);
    expect(denied).toBeLessThanOrEqual(1250);

    await putPolicy(a, "changing", `path "secret/data/changing/*" { capabilities = ["read"] }`);
    const granted = await timeUntil(readOnB, 200, 3000);
    expect(granted).toBeLessThanOrEqual(1250);

    expect((await on(a, "DELETE", "/v1/sys/policies/acl/changing")).status).toBe(204);
    const deleted = await timeUntil(readOnB, 403, 3000);
    expect(deleted).toBeLessThanOrEqual(1250);
  });

  it("check-and-set writes racing on A and B: exactly one winner per version, no write lost", async () => {
    const key = "race/cas";
    expect((await on(a, "POST", `/v1/secret/metadata/${key}`, { body: { max_versions: 1000 } })).status).toBe(204);
    const servers = [a, b, a, b, a, b];
    const winners: number[] = [];
    for (let round = 0; round < 8; round++) {
      const results = await Promise.all(
        servers.map((server, writer) =>
          on(server, "POST", `/v1/secret/data/${key}`, { body: { data: { round, writer }, options: { cas: round } } }),
        ),
      );
      const statuses = results.map((r) => r.status);
      const won = statuses.flatMap((status, writer) => (status === 200 ? [writer] : []));
      expect(won, `round ${round}: ${JSON.stringify(statuses)}`).toHaveLength(1);
      expect(
        results.filter((r) => r.status !== 200).every((r) => r.status === 400 && r.body.errors?.[0] === CAS_MISMATCH),
        `round ${round}: ${JSON.stringify(statuses)}`,
      ).toBe(true);
      const winner = won[0] as number;
      expect(results[winner]?.body.data.version).toBe(round + 1);
      winners.push(winner);
    }
    // every version holds its winner's data, read through either instance
    for (let version = 1; version <= winners.length; version++) {
      const server = version % 2 === 0 ? a : b;
      const read = await on(server, "GET", `/v1/secret/data/${key}?version=${version}`);
      expect(read.body.data.data).toEqual({ round: version - 1, writer: winners[version - 1] });
    }
  }, 30_000);

  it("read-modify-write loops with cas on both instances never lose an increment", async () => {
    const key = "race/counter";
    expect((await on(a, "POST", `/v1/secret/metadata/${key}`, { body: { max_versions: 1000 } })).status).toBe(204);
    expect((await on(a, "POST", `/v1/secret/data/${key}`, { body: { data: { count: 0, log: [] }, options: { cas: 0 } } })).status).toBe(
      200,
    );
    const workers = 6;
    const perWorker = 4;
    const statuses = new Map<number, number>();
    const worker = async (id: number) => {
      const server = id % 2 === 0 ? a : b;
      for (let done = 0; done < perWorker; ) {
        const current = await on(server, "GET", `/v1/secret/data/${key}`);
        expect(current.status).toBe(200);
        const { count, log } = current.body.data.data as { count: number; log: string[] };
        const version = current.body.data.metadata.version as number;
        const write = await on(server, "POST", `/v1/secret/data/${key}`, {
          body: { data: { count: count + 1, log: [...log, `${id}.${done}`] }, options: { cas: version } },
        });
        statuses.set(write.status, (statuses.get(write.status) ?? 0) + 1);
        if (write.status === 200) done++;
        else
          expect({ status: write.status, errors: write.body.errors }, JSON.stringify(write.body)).toEqual({
            status: 400,
            errors: [CAS_MISMATCH],
          });
      }
    };
    await Promise.all(Array.from({ length: workers }, (_, id) => worker(id)));
    const final = await on(b, "GET", `/v1/secret/data/${key}`);
    const data = final.body.data.data as { count: number; log: string[] };
    expect(data.count).toBe(workers * perWorker);
    expect(data.log).toHaveLength(workers * perWorker);
    expect(new Set(data.log).size).toBe(workers * perWorker);
    expect(final.body.data.metadata.version).toBe(1 + workers * perWorker);
    expect(statuses.get(200)).toBe(workers * perWorker);
  }, 30_000);

  it("a rotation on A, then a write on A: readable on B, and B's key-status term follows", async () => {
    const termOf = async (server: TestServer) => {
      const reply = await on(server, "GET", "/v1/sys/key-status");
      expect(reply.status).toBe(200);
      return reply.body.data.term as number;
    };
    const before = await termOf(a);
    expect(await termOf(b)).toBe(before);
    expect((await on(a, "POST", "/v1/sys/rotate")).status).toBe(204);
    expect(await termOf(a)).toBe(before + 1);
    expect((await on(a, "POST", "/v1/secret/data/rotated/x", { body: { data: { after: "rotation" } } })).status).toBe(200);
    const read = await on(b, "GET", "/v1/secret/data/rotated/x");
    expect(read.status).toBe(200);
    expect(read.body.data.data).toEqual({ after: "rotation" });
    expect(await termOf(b)).toBe(before + 1);
    // and B's own writes after that are readable on A
    expect((await on(b, "POST", "/v1/secret/data/rotated/y", { body: { data: { from: "b" } } })).status).toBe(200);
    expect((await on(a, "GET", "/v1/secret/data/rotated/y")).body.data.data).toEqual({ from: "b" });
    // data written before the rotation stays readable on both
    expect((await on(a, "GET", "/v1/secret/data/shared/one")).status).toBe(200);
    expect((await on(b, "GET", "/v1/secret/data/shared/one")).status).toBe(200);
  });

  it("every request to A or B (races and retries included) has exactly one row in the shared audit table", async () => {
    const { database, schema } = a.postgres as { database: string; schema: string };
    const counts = await withClient(database, async (client) => {
      const result = await client.query(
        `SELECT count(*)::int AS rows, count(DISTINCT request_id)::int AS ids FROM ${quoteIdentifier(schema)}.egide_audit_log`,
      );
      return result.rows[0] as { rows: number; ids: number };
    });
    expect(counts).toEqual({ rows: requests, ids: requests });
  });

  it("sealing B does not seal A", async () => {
    expect((await on(b, "PUT", "/v1/sys/seal")).status).toBe(204);
    expect((await on(b, "GET", "/v1/secret/data/shared/one")).status).toBe(503);
    expect((await on(a, "GET", "/v1/secret/data/shared/one")).status).toBe(200);
    for (const key of a.keys)
      expect((await call(b.url, "PUT", "/v1/sys/unseal", { body: { key: key.toString("base64") } })).status).toBe(200);
    expect((await on(b, "GET", "/v1/secret/data/shared/one")).status).toBe(200);
  });
});
