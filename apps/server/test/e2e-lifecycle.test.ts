/**
 * End to end: the life of an installation as a Vault client sees it, over real HTTP on a real
 * server (127.0.0.1, port 0) and real storage (a SQLite file, a PostgreSQL database):
 * uninitialised → init (3 shares, threshold 2) → sealed → unseal (with a reset in between, hex
 * and base64 shares) → KV write/read/list/delete → seal → everything 503 → unseal → data back →
 * restart on the same storage → sealed, unseal, data back. Then the same with the unmodified
 * `node-vault` client.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "@egide/test-postgres";
import vault from "node-vault";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type JsonBody, startTestServer, type TestServer, type TestServerOptions } from "@egide/test-server";

type Storage = "sqlite" | "postgresql";

const SEALED = { errors: ["Vault is sealed"] };
const ENVELOPE_KEYS = ["auth", "data", "lease_duration", "lease_id", "renewable", "request_id", "warnings", "wrap_info"];

/** Storage that outlives one server: a SQLite file, or a PostgreSQL database and schema. */
interface SharedStorage {
  options: TestServerOptions;
  dispose(): Promise<void>;
}

async function sharedStorage(storage: Storage, label: string): Promise<SharedStorage> {
  if (storage === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "egide-e2e-lifecycle-"));
    return {
      options: { storage, sqlitePath: join(dir, "egide.db"), uninitialized: true },
      async dispose() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  // No try/catch: PostgreSQL missing is a loud failure, never a skip.
  const database: TestDatabase = await createTestDatabase(label);
  return {
    options: { storage, postgres: { database: database.name, schema: "egide" }, uninitialized: true },
    dispose: () => database.drop(),
  };
}

/** Every KV v2 endpoint, with a body where it takes one. */
function kvCalls(prefix: string): Array<{ method: string; path: string; body?: unknown; headers?: Record<string, string> }> {
  return [
    { method: "GET", path: `/v1/secret/data/${prefix}` },
    { method: "GET", path: `/v1/secret/data/${prefix}?version=1` },
    { method: "PUT", path: `/v1/secret/data/${prefix}`, body: { data: { x: 1 } } },
    { method: "POST", path: `/v1/secret/data/${prefix}`, body: { data: { x: 1 }, options: { cas: 0 } } },
    {
      method: "PATCH",
      path: `/v1/secret/data/${prefix}`,
      body: { data: { x: 2 } },
      headers: { "content-type": "application/merge-patch+json" },
    },
    { method: "DELETE", path: `/v1/secret/data/${prefix}` },
    { method: "LIST", path: "/v1/secret/metadata/" },
    { method: "GET", path: "/v1/secret/metadata/?list=true" },
    { method: "GET", path: `/v1/secret/metadata/${prefix}` },
    { method: "POST", path: `/v1/secret/metadata/${prefix}`, body: { max_versions: 3 } },
    {
      method: "PATCH",
      path: `/v1/secret/metadata/${prefix}`,
      body: { max_versions: 4 },
      headers: { "content-type": "application/merge-patch+json" },
    },
    { method: "DELETE", path: `/v1/secret/metadata/${prefix}` },
    { method: "POST", path: `/v1/secret/delete/${prefix}`, body: { versions: [1] } },
    { method: "POST", path: `/v1/secret/undelete/${prefix}`, body: { versions: [1] } },
    { method: "PUT", path: `/v1/secret/destroy/${prefix}`, body: { versions: [1] } },
    { method: "GET", path: `/v1/secret/subkeys/${prefix}` },
    { method: "GET", path: "/v1/secret/config" },
    { method: "POST", path: "/v1/secret/config", body: { max_versions: 5 } },
  ];
}

describe.each([["sqlite"], ["postgresql"]] as const)("lifecycle with a Vault-style client over %s", (storage) => {
  let shared: SharedStorage;
  let server: TestServer | undefined;
  let url = "";
  let keys: string[] = [];
  let keysBase64: string[] = [];
  let rootToken = "";

  beforeAll(async () => {
    shared = await sharedStorage(storage, "e2e_lifecycle");
    server = await startTestServer(shared.options);
    url = server.url;
  }, 30_000);

  afterAll(async () => {
    await server?.close();
    await shared?.dispose();
  });

  it("starts uninitialised: sys/init false, health 501, seal-status uninitialised, KV 503", async () => {
    const init = await call(url, "GET", "/v1/sys/init");
    expect(init.status).toBe(200);
    expect(init.body).toEqual({ initialized: false });

    const health = await call(url, "GET", "/v1/sys/health");
    expect(health.status).toBe(501);
    expect(health.body).toMatchObject({ initialized: false, sealed: true, standby: false });

    const status = await call(url, "GET", "/v1/sys/seal-status");
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ type: "shamir", initialized: false, sealed: true });

    // Vault answers requests to an uninitialised server as sealed.
    const read = await call(url, "GET", "/v1/secret/data/app/db", { token: "anything" });
    expect(read.status).toBe(503);
    expect(read.body).toEqual(SEALED);

    // Unsealing before init is a client error.
    const unseal = await call(url, "PUT", "/v1/sys/unseal", { body: { key: "00" } });
    expect(unseal.status).toBe(400);
    expect(unseal.body.errors).toEqual(["Vault is not initialized"]);
  });

  it("invalid init parameters are 400 and leave it uninitialised", async () => {
    for (const body of [
      { secret_shares: 3, secret_threshold: 4 },
      { secret_shares: 0, secret_threshold: 0 },
      { secret_shares: 3, secret_threshold: 1 },
      { secret_shares: 256, secret_threshold: 2 },
      { secret_shares: "3", secret_threshold: 2 },
      { secret_shares: 3, secret_threshold: 2, pgp_keys: ["a", "b", "c"] },
    ]) {
      const response = await call(url, "PUT", "/v1/sys/init", { body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.errors, JSON.stringify(body)).toEqual([expect.any(String)]);
    }
    expect((await call(url, "GET", "/v1/sys/init")).body).toEqual({ initialized: false });
  });

  it("PUT sys/init with 3 shares and threshold 2 answers keys (hex), keys_base64 and root_token, once", async () => {
    const response = await call(url, "PUT", "/v1/sys/init", { body: { secret_shares: 3, secret_threshold: 2 } });
    expect(response.status).toBe(200);
    expect(Object.keys(response.body).sort()).toEqual(["keys", "keys_base64", "root_token"]);
    keys = response.body.keys;
    keysBase64 = response.body.keys_base64;
    rootToken = response.body.root_token;
    expect(keys).toHaveLength(3);
    expect(keysBase64).toHaveLength(3);
    expect(new Set(keys).size).toBe(3);
    for (const [index, key] of keys.entries()) {
      expect(key).toMatch(/^[0-9a-f]+$/);
      expect(Buffer.from(keysBase64[index] as string, "base64").toString("hex")).toBe(key);
    }
    expect(rootToken).toEqual(expect.any(String));
    expect(rootToken.length).toBeGreaterThan(10);

    const again = await call(url, "PUT", "/v1/sys/init", { body: { secret_shares: 3, secret_threshold: 2 } });
    expect(again.status).toBe(400);
    expect(again.body).toEqual({ errors: ["Vault is already initialized"] });
    expect((await call(url, "GET", "/v1/sys/init")).body).toEqual({ initialized: true });
  });

  it("is sealed after init: seal-status with t/n, health 503, KV 503 even with the root token", async () => {
    const status = await call(url, "GET", "/v1/sys/seal-status");
    expect(status.body).toMatchObject({ type: "shamir", initialized: true, sealed: true, t: 2, n: 3, progress: 0 });
    const health = await call(url, "GET", "/v1/sys/health");
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ initialized: true, sealed: true });
    const read = await call(url, "GET", "/v1/secret/data/app/db", { token: rootToken });
    expect(read.status).toBe(503);
    expect(read.body).toEqual(SEALED);
  });

  it("a malformed share is 400 and keeps the progress; a share given twice counts once", async () => {
    const first = await call(url, "PUT", "/v1/sys/unseal", { body: { key: keys[0] } });
    expect(first.body).toMatchObject({ sealed: true, progress: 1 });
    for (const key of ["zz", "", "00", "a".repeat(500)]) {
      const response = await call(url, "PUT", "/v1/sys/unseal", { body: { key } });
      expect(response.status, key).toBe(400);
    }
    expect((await call(url, "GET", "/v1/sys/seal-status")).body).toMatchObject({ sealed: true, progress: 1 });
    const again = await call(url, "PUT", "/v1/sys/unseal", { body: { key: keysBase64[0] } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ sealed: true, progress: 1 });
    expect((await call(url, "PUT", "/v1/sys/unseal", { body: { reset: true } })).body.progress).toBe(0);
  });

  it("unseals: one share (progress 1), reset (progress 0), then two shares in base64", async () => {
    const first = await call(url, "PUT", "/v1/sys/unseal", { body: { key: keys[0] } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ sealed: true, t: 2, n: 3, progress: 1 });
    expect(first.body.nonce).toEqual(expect.any(String));
    expect(first.body.nonce).not.toBe("");

    const reset = await call(url, "PUT", "/v1/sys/unseal", { body: { reset: true } });
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ sealed: true, progress: 0 });
    expect((await call(url, "GET", "/v1/sys/seal-status")).body).toMatchObject({ sealed: true, progress: 0 });

    const second = await call(url, "PUT", "/v1/sys/unseal", { body: { key: keysBase64[1] } });
    expect(second.body).toMatchObject({ sealed: true, progress: 1 });
    const third = await call(url, "PUT", "/v1/sys/unseal", { body: { key: keysBase64[2] } });
    expect(third.status).toBe(200);
    expect(third.body).toMatchObject({ sealed: false, t: 2, n: 3, progress: 0 });
    expect((await call(url, "GET", "/v1/sys/seal-status")).body).toMatchObject({ initialized: true, sealed: false });
  });

  it("health is 200 with the storage object once unsealed", async () => {
    const health = await call(url, "GET", "/v1/sys/health");
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ initialized: true, sealed: false, standby: false });
    expect(health.body.storage).toEqual({ type: storage, status: "healthy", latency_ms: expect.any(Number) });
    expect(health.body.storage.latency_ms).toBeGreaterThanOrEqual(0);
  });

  it("writes, reads, lists (LIST and GET ?list=true) and deletes a secret", async () => {
    const write = await call(url, "PUT", "/v1/secret/data/app/db", { token: rootToken, body: { data: { password: "p1" } } });
    expect(write.status).toBe(200);
    expect(Object.keys(write.body).sort()).toEqual(ENVELOPE_KEYS);
    expect(write.body.data).toMatchObject({ version: 1, destroyed: false, deletion_time: "" });

    const read = await call(url, "GET", "/v1/secret/data/app/db", { token: rootToken });
    expect(read.status).toBe(200);
    expect(read.body.data.data).toEqual({ password: "p1" });
    expect(read.body.data.metadata).toMatchObject({ version: 1 });

    for (const [method, path] of [
      ["LIST", "/v1/secret/metadata/"],
      ["LIST", "/v1/secret/metadata"],
      ["GET", "/v1/secret/metadata/?list=true"],
      ["GET", "/v1/secret/metadata?list=true"],
    ] as const) {
      const list = await call(url, method, path, { token: rootToken });
      expect(list.status, `${method} ${path}`).toBe(200);
      expect(list.body.data, `${method} ${path}`).toEqual({ keys: ["app/"] });
    }
    for (const [method, path] of [
      ["LIST", "/v1/secret/metadata/app"],
      ["LIST", "/v1/secret/metadata/app/"],
      ["GET", "/v1/secret/metadata/app?list=true"],
    ] as const) {
      const list = await call(url, method, path, { token: rootToken });
      expect(list.status, `${method} ${path}`).toBe(200);
      expect(list.body.data, `${method} ${path}`).toEqual({ keys: ["db"] });
    }

    const remove = await call(url, "DELETE", "/v1/secret/data/app/db", { token: rootToken });
    expect(remove.status).toBe(204);
    const gone = await call(url, "GET", "/v1/secret/data/app/db", { token: rootToken });
    expect(gone.status).toBe(404);
    expect(gone.body.data.data).toBeNull();
    expect(gone.body.data.metadata.deletion_time).not.toBe("");

    // A second version, for the checks after seal and restart.
    const again = await call(url, "POST", "/v1/secret/data/app/db", {
      token: rootToken,
      body: { data: { password: "p2" }, options: { cas: 1 } },
    });
    expect(again.status).toBe(200);
    expect(again.body.data.version).toBe(2);
  });

  it("PUT sys/seal needs a token (403), seals with the root token (204); then every KV call is 503", async () => {
    const anonymous = await call(url, "PUT", "/v1/sys/seal");
    expect(anonymous.status).toBe(403);
    expect(anonymous.body).toEqual({ errors: ["permission denied"] });
    expect((await call(url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(false);

    const seal = await call(url, "PUT", "/v1/sys/seal", { token: rootToken });
    expect(seal.status).toBe(204);
    expect(seal.body).toBeNull();
    expect((await call(url, "GET", "/v1/sys/seal-status")).body).toMatchObject({ sealed: true, progress: 0, t: 2, n: 3 });
    expect((await call(url, "GET", "/v1/sys/health")).status).toBe(503);

    const problems: string[] = [];
    for (const request of kvCalls("app/db")) {
      for (const token of [rootToken, undefined]) {
        const response = await call(url, request.method, request.path, {
          ...(token ? { token } : {}),
          ...(request.body !== undefined ? { body: request.body } : {}),
          ...(request.headers ? { headers: request.headers } : {}),
        });
        if (response.status !== 503 || JSON.stringify(response.body) !== JSON.stringify(SEALED)) {
          problems.push(
            `${request.method} ${request.path} (${token ? "root token" : "no token"}): ${response.status} ${JSON.stringify(response.body)}`,
          );
        }
      }
    }
    expect(problems).toEqual([]);
    // Token and policy endpoints are sealed too.
    expect((await call(url, "GET", "/v1/auth/token/lookup-self", { token: rootToken })).status).toBe(503);
    expect((await call(url, "PUT", "/v1/sys/seal", { token: rootToken })).status).toBe(503);
  });

  it("unseals again (hex shares) and the data is back", async () => {
    await call(url, "PUT", "/v1/sys/unseal", { body: { key: keys[2] } });
    const done = await call(url, "PUT", "/v1/sys/unseal", { body: { key: keys[0] } });
    expect(done.body).toMatchObject({ sealed: false, progress: 0 });
    const read = await call(url, "GET", "/v1/secret/data/app/db", { token: rootToken });
    expect(read.status).toBe(200);
    expect(read.body.data).toMatchObject({ data: { password: "p2" }, metadata: { version: 2 } });
    const first = await call(url, "GET", "/v1/secret/data/app/db?version=1", { token: rootToken });
    expect(first.status).toBe(404);
    expect(first.body.data.metadata.version).toBe(1);
    expect((await call(url, "GET", "/v1/sys/health")).status).toBe(200);
  });

  it("a restarted server on the same storage is initialised and sealed; unsealed, its data and root token are back", async () => {
    await server?.close();
    server = undefined;
    server = await startTestServer(shared.options);
    url = server.url;

    expect((await call(url, "GET", "/v1/sys/init")).body).toEqual({ initialized: true });
    expect((await call(url, "GET", "/v1/sys/seal-status")).body).toMatchObject({
      initialized: true,
      sealed: true,
      t: 2,
      n: 3,
      progress: 0,
    });
    expect((await call(url, "GET", "/v1/sys/health")).status).toBe(503);
    expect((await call(url, "GET", "/v1/secret/data/app/db", { token: rootToken })).status).toBe(503);

    await call(url, "PUT", "/v1/sys/unseal", { body: { key: keysBase64[1] } });
    expect((await call(url, "PUT", "/v1/sys/unseal", { body: { key: keys[2] } })).body.sealed).toBe(false);
    const read = await call(url, "GET", "/v1/secret/data/app/db", { token: rootToken });
    expect(read.status).toBe(200);
    expect(read.body.data.data).toEqual({ password: "p2" });
    expect((await call(url, "LIST", "/v1/secret/metadata/app", { token: rootToken })).body.data).toEqual({ keys: ["db"] });
  }, 30_000);
});

describe.each([["sqlite"], ["postgresql"]] as const)("lifecycle races over %s", (storage) => {
  let server: TestServer;
  let url = "";
  let keys: string[] = [];
  let rootToken = "";

  beforeAll(async () => {
    server = await startTestServer({ storage, uninitialized: true });
    url = server.url;
  }, 30_000);

  afterAll(async () => {
    await server?.close();
  });

  it("10 concurrent PUT sys/init: exactly one 200 (one root token), the others 400", async () => {
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => call(url, "PUT", "/v1/sys/init", { body: { secret_shares: 3, secret_threshold: 2 } })),
    );
    const statuses = responses.map((response) => response.status);
    const winners = responses.filter((response) => response.status === 200);
    expect(winners, JSON.stringify(statuses)).toHaveLength(1);
    expect(
      statuses.filter((status) => status === 400),
      JSON.stringify(statuses),
    ).toHaveLength(9);
    keys = winners[0]!.body.keys;
    rootToken = winners[0]!.body.root_token;
    expect((await call(url, "GET", "/v1/sys/seal-status")).body).toMatchObject({ initialized: true, sealed: true, t: 2, n: 3 });
  }, 20_000);

  it("two shares sent at once unseal it, and the winner's root token works", async () => {
    const responses = await Promise.all(keys.slice(0, 2).map((key) => call(url, "PUT", "/v1/sys/unseal", { body: { key } })));
    expect(responses.map((response) => response.status)).toEqual([200, 200]);
    expect((await call(url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(false);
    expect((await call(url, "GET", "/v1/auth/token/lookup-self", { token: rootToken })).status).toBe(200);
  });

  it("sealing while 40 requests are in flight: each answers 200 or 503 (never 500); after unseal the data is consistent", async () => {
    const requests: Array<Promise<{ status: number; body: JsonBody }>> = [];
    for (let i = 0; i < 20; i++) {
      requests.push(call(url, "PUT", "/v1/secret/data/race", { token: rootToken, body: { data: { i } } }));
      requests.push(call(url, "GET", "/v1/secret/data/race", { token: rootToken }));
      if (i === 5) requests.push(call(url, "PUT", "/v1/sys/seal", { token: rootToken }));
    }
    const responses = await Promise.all(requests);
    // The seal itself answered 204.
    expect(responses.filter((response) => response.status === 204)).toHaveLength(1);
    const unexpected = responses
      .filter((response) => ![200, 204, 404, 503].includes(response.status))
      .map((response) => `${response.status} ${JSON.stringify(response.body)}`);
    expect(unexpected).toEqual([]);
    for (const response of responses.filter((r) => r.status === 503)) expect(response.body).toEqual({ errors: ["Vault is sealed"] });
    expect((await call(url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(true);

    for (const key of keys.slice(1, 3)) await call(url, "PUT", "/v1/sys/unseal", { body: { key } });
    expect((await call(url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(false);
    const writes = responses.filter((response) => response.status === 200 && typeof response.body?.data?.version === "number").length;
    const meta = await call(url, "GET", "/v1/secret/metadata/race", { token: rootToken });
    if (writes === 0) {
      expect([200, 404]).toContain(meta.status);
    } else {
      expect(meta.body.data.current_version).toBeGreaterThanOrEqual(writes);
      expect(meta.body.data.current_version).toBeLessThanOrEqual(20);
      const read = await call(url, "GET", "/v1/secret/data/race", { token: rootToken });
      expect(read.status).toBe(200);
      expect(read.body.data.metadata.version).toBe(meta.body.data.current_version);
    }
    expect((await call(url, "GET", "/v1/sys/health")).status).toBe(200);
  }, 20_000);
});

describe.each([["sqlite"], ["postgresql"]] as const)("the unmodified node-vault client over %s", (storage) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ storage, uninitialized: true });
  }, 30_000);

  afterAll(async () => {
    await server?.close();
  });

  it("inits, unseals, writes, reads, lists, patches and deletes a KV v2 secret", async () => {
    const client = vault({ apiVersion: "v1", endpoint: server.url });
    expect(await client.initialized()).toEqual({ initialized: false });

    const init = await client.init({ secret_shares: 3, secret_threshold: 2 });
    expect(init.keys).toHaveLength(3);
    expect(init.root_token).toEqual(expect.any(String));
    client.token = init.root_token;

    expect(await client.status()).toMatchObject({ initialized: true, sealed: true, t: 2, n: 3 });
    expect(await client.unseal({ key: init.keys[0] })).toMatchObject({ sealed: true, progress: 1 });
    expect(await client.unseal({ key: init.keys_base64[2] })).toMatchObject({ sealed: false });

    const write = await client.write("secret/data/x", { data: { user: "u", password: "p" } });
    expect(write.data).toMatchObject({ version: 1, destroyed: false });
    const read = await client.read("secret/data/x");
    expect(read.data.data).toEqual({ user: "u", password: "p" });
    expect(read.data.metadata.version).toBe(1);

    // node-vault lists with the LIST method...
    expect((await client.list("secret/metadata/")).data).toEqual({ keys: ["x"] });
    expect((await client.list("secret/metadata")).data).toEqual({ keys: ["x"] });
    // ...or with GET ?list=1 when told not to use custom verbs.
    const plain = vault({ apiVersion: "v1", endpoint: server.url, token: init.root_token, noCustomHTTPVerbs: true });
    expect((await plain.list("secret/metadata/")).data).toEqual({ keys: ["x"] });

    // update() is a JSON merge patch (PATCH, application/merge-patch+json).
    const patched = await client.update("secret/data/x", { data: { password: null, role: "admin" } });
    expect(patched.data.version).toBe(2);
    expect((await client.read("secret/data/x")).data.data).toEqual({ user: "u", role: "admin" });
    expect((await client.read("secret/data/x?version=1")).data.data).toEqual({ user: "u", password: "p" });

    await client.delete("secret/data/x");
    await expect(client.read("secret/data/x")).rejects.toMatchObject({ response: { statusCode: 404 } });

    const health = await client.health();
    expect(health).toMatchObject({ initialized: true, sealed: false });

    await client.seal();
    await expect(client.read("secret/data/x")).rejects.toMatchObject({ message: "Vault is sealed", response: { statusCode: 503 } });
    expect(await client.status()).toMatchObject({ sealed: true });
  }, 30_000);
});
