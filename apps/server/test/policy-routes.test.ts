import { SqliteBackend } from "@egide/storage-sqlite";
import Fastify from "fastify";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VaultError, permissionDenied } from "../src/http/vault-error.js";
import { DEFAULT_POLICY_HCL } from "../src/policy/default-policies.js";
import { PolicyStore } from "../src/policy/policy-store.js";
import { registerPolicyRoutes } from "../src/routes/sys-policy-routes.js";
import type { Caller, Capability, Operation, ServerContext } from "../src/server-context.js";

// The routes over Fastify's inject, with a stand-in ServerContext: the caller's policies come
// from the x-test-policies header and are checked with the real PolicyStore ACL; mutations run
// in a real SQLite transaction. (The full server is tested end to end elsewhere.)

const ADMIN = `path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policy/*" { capabilities = ["read", "update", "delete"] }
path "sys/policy" { capabilities = ["read", "list"] }`;
const READ_SECRET = `path "secret/*" {\n  capabilities = ["read"]\n}\n`;

interface Recorded {
  described: Array<[Operation, string]>;
  authorized: Array<[string, Capability]>;
  mutations: number[];
}

function fakeContext(storage: SqliteBackend, policies: PolicyStore, recorded: Recorded): ServerContext {
  const caller = (request: FastifyRequest): Caller => ({
    accessor: "test",
    policies: String(request.headers["x-test-policies"] ?? "").split(",").filter(Boolean),
    displayName: "test",
  });
  const capabilities = async (request: FastifyRequest, path: string) => {
    const who = caller(request);
    return { caller: who, capabilities: (await policies.acl(who.policies)).capabilities(path) };
  };
  return {
    storage,
    raw: storage,
    seal: undefined as never,
    metrics: undefined as never,
    capabilities,
    async authorize(request, path, capability) {
      recorded.authorized.push([path, capability]);
      const { caller: who, capabilities: granted } = await capabilities(request, path);
      if (!granted.has(capability)) throw permissionDenied();
      return who;
    },
    mutate(_request, status, fn) {
      recorded.mutations.push(status);
      return storage.transaction(fn);
    },
    describe(_request, operation, path) {
      recorded.described.push([operation, path]);
    },
  };
}

describe("policy routes", () => {
  let storage: SqliteBackend;
  let policies: PolicyStore;
  let app: FastifyInstance;
  let recorded: Recorded;

  beforeEach(async () => {
    storage = SqliteBackend.open({ path: ":memory:" });
    policies = new PolicyStore(storage);
    recorded = { described: [], authorized: [], mutations: [] };
    app = Fastify();
    app.setErrorHandler(async (error, _request, reply) => {
      if (error instanceof VaultError) return reply.code(error.status).send({ errors: error.errors });
      return reply.code(500).send({ errors: [String(error)] });
    });
    registerPolicyRoutes(app, fakeContext(storage, policies, recorded), policies);
    await app.ready();
    await storage.transaction((tx) => policies.write(tx, "admin", ADMIN));
  });
  afterEach(async () => {
    await app.close();
    await storage.close();
  });

  const as = (policy: string) => ({ "x-test-policies": policy });

  it("PUT then GET /v1/sys/policies/acl/:name: 204, then {name, policy} in Vault's envelope", async () => {
    const put = await app.inject({ method: "PUT", url: "/v1/sys/policies/acl/Readers", headers: as("admin"), payload: { policy: READ_SECRET } });
    expect(put.statusCode).toBe(204);
    expect(put.body).toBe("");
    expect(recorded.described.at(-1)).toEqual(["update", "sys/policies/acl/Readers"]);
    expect(recorded.authorized.at(-1)).toEqual(["sys/policies/acl/Readers", "update"]);
    expect(recorded.mutations).toEqual([204]);

    const get = await app.inject({ method: "GET", url: "/v1/sys/policies/acl/readers", headers: as("admin") });
    expect(get.statusCode).toBe(200);
    const body = get.json();
    expect(body).toEqual({
      request_id: expect.any(String),
      lease_id: "",
      renewable: false,
      lease_duration: 0,
      data: { name: "readers", policy: READ_SECRET },
      wrap_info: null,
      warnings: null,
      auth: null,
    });
  });

  it("POST works like PUT, and accepts a base64-encoded policy", async () => {
    const encoded = Buffer.from(READ_SECRET).toString("base64");
    const post = await app.inject({ method: "POST", url: "/v1/sys/policies/acl/b64", headers: as("admin"), payload: { policy: encoded } });
    expect(post.statusCode).toBe(204);
    expect((await policies.get("b64"))?.raw).toBe(READ_SECRET);
  });

  it("LIST (GET ?list=true) /v1/sys/policies/acl: data.keys, root last", async () => {
    await storage.transaction((tx) => policies.write(tx, "zeta", READ_SECRET));
    const list = await app.inject({ method: "GET", url: "/v1/sys/policies/acl?list=true", headers: as("admin") });
    expect(list.statusCode).toBe(200);
    expect(list.json().data).toEqual({ keys: ["admin", "default", "zeta", "root"] });
    expect(recorded.described.at(-1)).toEqual(["list", "sys/policies/acl/"]);
    expect(recorded.authorized.at(-1)).toEqual(["sys/policies/acl/", "list"]);
    const slash = await app.inject({ method: "GET", url: "/v1/sys/policies/acl/?list=true", headers: as("admin") });
    expect(slash.json().data).toEqual({ keys: ["admin", "default", "zeta", "root"] });
  });

  it("GET /v1/sys/policies/acl without list is an unsupported operation", async () => {
    const response = await app.inject({ method: "GET", url: "/v1/sys/policies/acl", headers: as("root") });
    expect(response.statusCode).toBe(405);
  });

  it("GET of an unknown policy: 404 with an empty errors array", async () => {
    const response = await app.inject({ method: "GET", url: "/v1/sys/policies/acl/nope", headers: as("admin") });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ errors: [] });
  });

  it("GET default and root", async () => {
    const byDefault = await app.inject({ method: "GET", url: "/v1/sys/policies/acl/default", headers: as("admin") });
    expect(byDefault.json().data).toEqual({ name: "default", policy: DEFAULT_POLICY_HCL });
    const root = await app.inject({ method: "GET", url: "/v1/sys/policies/acl/root", headers: as("admin") });
    expect(root.json().data).toEqual({ name: "root", policy: "" });
  });

  it("DELETE: 204; root and default refused with 400", async () => {
    await storage.transaction((tx) => policies.write(tx, "gone", READ_SECRET));
    const deleted = await app.inject({ method: "DELETE", url: "/v1/sys/policies/acl/gone", headers: as("admin") });
    expect(deleted.statusCode).toBe(204);
    expect(await policies.get("gone")).toBeNull();
    expect(recorded.authorized.at(-1)).toEqual(["sys/policies/acl/gone", "delete"]);

    const root = await app.inject({ method: "DELETE", url: "/v1/sys/policies/acl/root", headers: as("admin") });
    expect(root.statusCode).toBe(400);
    expect(root.json()).toEqual({ errors: ['cannot delete "root" policy'] });
    const byDefault = await app.inject({ method: "DELETE", url: "/v1/sys/policies/acl/default", headers: as("admin") });
    expect(byDefault.json()).toEqual({ errors: ["cannot delete default policy"] });
  });

  it("writes: invalid text, missing policy, root, invalid names → 400", async () => {
    const cases: Array<[string, unknown, string]> = [
      ["/v1/sys/policies/acl/p", { policy: `path "a" { capabilities = ["fly"] }` }, 'failed to parse policy: path "a": invalid capability "fly"'],
      ["/v1/sys/policies/acl/p", {}, "'policy' parameter not supplied or empty"],
      ["/v1/sys/policies/acl/p", { policy: "" }, "'policy' parameter not supplied or empty"],
      ["/v1/sys/policies/acl/p", { rules: READ_SECRET }, "'policy' parameter not supplied or empty"],
      ["/v1/sys/policies/acl/p", { policy: 42 }, "'policy' must be a string"],
      ["/v1/sys/policies/acl/root", { policy: READ_SECRET }, 'cannot update "root" policy'],
      ["/v1/sys/policies/acl/bad%20name", { policy: READ_SECRET }, 'invalid policy name "bad name": only letters, digits, \'.\', \'_\' and \'-\' are allowed'],
    ];
    for (const [url, payload, message] of cases) {
      const response = await app.inject({ method: "PUT", url, headers: as("root"), payload: payload as object });
      expect(response.statusCode, url).toBe(400);
      expect(response.json(), JSON.stringify(payload)).toEqual({ errors: [message] });
    }
  });

  it("refuses callers without the capability (403), with deny by default", async () => {
    await storage.transaction((tx) => policies.write(tx, "reader", READ_SECRET));
    for (const [method, url] of [
      ["GET", "/v1/sys/policies/acl?list=true"],
      ["GET", "/v1/sys/policies/acl/default"],
      ["PUT", "/v1/sys/policies/acl/x"],
      ["DELETE", "/v1/sys/policies/acl/x"],
      ["GET", "/v1/sys/policy"],
      ["GET", "/v1/sys/policy/default"],
    ] as const) {
      const response = await app.inject({ method, url, headers: as("reader"), payload: method === "PUT" ? { policy: READ_SECRET } : undefined });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
    }
  });

  it("the older /v1/sys/policy endpoints answer their data at the top level too", async () => {
    const list = await app.inject({ method: "GET", url: "/v1/sys/policy", headers: as("admin") });
    expect(list.statusCode).toBe(200);
    const listed = list.json();
    expect(listed.keys).toEqual(["admin", "default", "root"]);
    expect(listed.policies).toEqual(["admin", "default", "root"]);
    expect(listed.data).toEqual({ keys: ["admin", "default", "root"], policies: ["admin", "default", "root"] });
    expect(listed.request_id).toEqual(expect.any(String));
    expect(recorded.authorized.at(-1)).toEqual(["sys/policy", "read"]);

    const put = await app.inject({ method: "PUT", url: "/v1/sys/policy/legacy", headers: as("admin"), payload: { policy: READ_SECRET } });
    expect(put.statusCode).toBe(204);
    const read = await app.inject({ method: "GET", url: "/v1/sys/policy/legacy", headers: as("admin") });
    const body = read.json();
    expect(body.name).toBe("legacy");
    expect(body.rules).toBe(READ_SECRET);
    expect(body.data).toEqual({ name: "legacy", rules: READ_SECRET });

    const deleted = await app.inject({ method: "DELETE", url: "/v1/sys/policy/legacy", headers: as("admin") });
    expect(deleted.statusCode).toBe(204);
    expect(await policies.get("legacy")).toBeNull();
  });

  it("the older endpoint accepts the deprecated rules field, with Vault's warning", async () => {
    const put = await app.inject({ method: "POST", url: "/v1/sys/policy/old", headers: as("admin"), payload: { rules: READ_SECRET } });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ data: null, warnings: ["'rules' is deprecated, please use 'policy' instead"] });
    expect(recorded.mutations.at(-1)).toBe(200);
    expect((await policies.get("old"))?.raw).toBe(READ_SECRET);
  });

  it("a write is seen by the next ACL check at once", async () => {
    const before = await app.inject({ method: "GET", url: "/v1/sys/policies/acl/default", headers: as("self") });
    expect(before.statusCode).toBe(403);
    await app.inject({
      method: "PUT",
      url: "/v1/sys/policies/acl/self",
      headers: as("admin"),
      payload: { policy: `path "sys/policies/acl/default" { capabilities = ["read"] }` },
    });
    const after = await app.inject({ method: "GET", url: "/v1/sys/policies/acl/default", headers: as("self") });
    expect(after.statusCode).toBe(200);
  });
});
