import { SqliteBackend } from "@egide/storage-sqlite";
import Fastify from "fastify";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testTokenEntry } from "./support/kv-test-context.js";
import { errorResponse } from "../src/http/error-response.js";
import { canonicalRewriteUrl, installRequestPipeline, type RequestAuthorizer } from "../src/http/request-pipeline.js";
import { DEFAULT_POLICY_HCL } from "../src/policy/default-policies.js";
import { PolicyStore } from "../src/policy/policy-store.js";
import { registerPolicyRoutes, type PolicyRoutesContext } from "../src/routes/sys-policy-routes.js";
import type { Caller, Operation } from "../src/server-context.js";

// The routes over Fastify's inject, behind the real request pipeline (canonical paths,
// description, ACL checks) with a stand-in authorizer: the caller's policies come from the
// x-test-policies header (no header: no token) and are checked with the real PolicyStore ACL;
// mutations run in a real SQLite transaction. (The full server is tested end to end elsewhere.)

const ADMIN = `path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policy/*" { capabilities = ["read", "update", "delete"] }
path "sys/policy" { capabilities = ["read", "list"] }`;
const READ_SECRET = `path "secret/*" {\n  capabilities = ["read"]\n}\n`;

interface Recorded {
  /** What each answered request ended up described as in `request.egide` (operation, canonical path). */
  described: Array<[Operation, string]>;
  /** Every ACL check the pipeline made (`allowOperation`): path and operation. */
  authorized: Array<[string, Operation]>;
  mutations: number[];
}

function fakeAuthorizer(policies: PolicyStore, recorded: Recorded): RequestAuthorizer {
  return {
    sealed: false,
    // Tokens here have no use limit.
    spendUse: async (_token, entry) => entry,
    async authenticate(request: FastifyRequest) {
      const header = request.headers["x-test-policies"];
      if (header === undefined) return null;
      const caller: Caller = { accessor: "test", policies: String(header).split(",").filter(Boolean), displayName: "test" };
      return { token: "test-token", entry: testTokenEntry(caller), caller };
    },
    async allowOperation(caller, check, capabilityCheckOnly) {
      recorded.authorized.push([check.path, check.operation]);
      return (await policies.acl(caller.policies)).allowOperation(check, capabilityCheckOnly);
    },
  };
}

function fakeContext(storage: SqliteBackend, recorded: Recorded): PolicyRoutesContext {
  return {
    mutate(_request, status, fn) {
      recorded.mutations.push(status);
      return storage.transaction(fn);
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
    app = Fastify({ rewriteUrl: canonicalRewriteUrl });
    installRequestPipeline(app, fakeAuthorizer(policies, recorded), { unaudited: new Set() });
    app.addHook("onSend", async (request, _reply, payload) => {
      recorded.described.push([request.egide.operation, request.egide.path]);
      return payload;
    });
    app.setErrorHandler(async (error, _request, reply) => {
      const { status, errors } = errorResponse(error);
      return reply.code(status).send({ errors });
    });
    registerPolicyRoutes(app, fakeContext(storage, recorded), policies);
    await app.ready();
    await storage.transaction((tx) => policies.write(tx, "admin", ADMIN));
  });
  afterEach(async () => {
    await app.close();
    await storage.close();
  });

  const as = (policy: string) => ({ "x-test-policies": policy });

  it("PUT then GET /v1/sys/policies/acl/:name: 204, then {name, policy} in Vault's envelope", async () => {
    const put = await app.inject({
      method: "PUT",
      url: "/v1/sys/policies/acl/Readers",
      headers: as("admin"),
      payload: { policy: READ_SECRET },
    });
    expect(put.statusCode).toBe(204);
    expect(put.body).toBe("");
    // The name is lower-cased before the check: checked, described and written as "readers".
    expect(recorded.described.at(-1)).toEqual(["update", "sys/policies/acl/readers"]);
    expect(recorded.authorized.at(-1)).toEqual(["sys/policies/acl/readers", "update"]);
    expect(recorded.authorized.some(([path]) => path !== "sys/policies/acl/readers")).toBe(false);
    expect(recorded.mutations).toEqual([204]);
    expect(await policies.list()).toEqual(["admin", "default", "readers", "root"]);

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
      [
        "/v1/sys/policies/acl/p",
        { policy: `path "a" { capabilities = ["fly"] }` },
        'failed to parse policy: path "a": invalid capability "fly"',
      ],
      ["/v1/sys/policies/acl/p", {}, "'policy' parameter not supplied or empty"],
      ["/v1/sys/policies/acl/p", { policy: "" }, "'policy' parameter not supplied or empty"],
      ["/v1/sys/policies/acl/p", { rules: READ_SECRET }, "'policy' parameter not supplied or empty"],
      ["/v1/sys/policies/acl/p", { policy: 42 }, "'policy' must be a string"],
      ["/v1/sys/policies/acl/root", { policy: READ_SECRET }, 'cannot update "root" policy'],
      [
        "/v1/sys/policies/acl/bad%20name",
        { policy: READ_SECRET },
        "invalid policy name \"bad name\": only letters, digits, '.', '_' and '-' are allowed",
      ],
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
      const response = await app.inject({
        method,
        url,
        headers: as("reader"),
        payload: method === "PUT" ? { policy: READ_SECRET } : undefined,
      });
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

  it("lower-cases a policy name (ASCII only) before the check: checked, audited and acted on in lower case", async () => {
    const read = await app.inject({ method: "GET", url: "/v1/sys/policy/ADMIN", headers: as("admin") });
    expect(read.statusCode).toBe(200);
    expect(read.json().name).toBe("admin");
    expect(recorded.described.at(-1)).toEqual(["read", "sys/policy/admin"]);
    expect(recorded.authorized).toContainEqual(["sys/policy/admin", "read"]);
    expect(recorded.authorized.some(([path]) => path.includes("ADMIN"))).toBe(false);

    // A deny on the lower-case name cannot be side-stepped by spelling it in upper case.
    await storage.transaction((tx) =>
      policies.write(
        tx,
        "editor",
        `path "sys/policies/acl/*" { capabilities = ["read", "update"] }\npath "sys/policies/acl/admin" { capabilities = ["deny"] }`,
      ),
    );
    for (const url of ["/v1/sys/policies/acl/ADMIN", "/v1/sys/policies/acl/Admin", "/v1/sys/policies/acl/%41DMIN"]) {
      const put = await app.inject({ method: "PUT", url, headers: as("editor"), payload: { policy: READ_SECRET } });
      expect(put.statusCode, url).toBe(403);
      expect(recorded.authorized.at(-1), url).toEqual(["sys/policies/acl/admin", "update"]);
      expect((await app.inject({ method: "GET", url, headers: as("editor") })).statusCode, url).toBe(403);
    }
    expect((await policies.get("admin"))?.raw).toBe(ADMIN);
    expect(await policies.get("ADMIN")).toBeNull();
    expect(recorded.mutations).toEqual([]);
  });

  it("a name invalid once lower-cased is 400 before any check (a caller without any capability gets 400, not 403)", async () => {
    await storage.transaction((tx) => policies.write(tx, "reader", READ_SECRET));
    const cases: Array<[string, string]> = [
      ["/v1/sys/policies/acl/bad%20name", "invalid policy name \"bad name\": only letters, digits, '.', '_' and '-' are allowed"],
      // Only ASCII letters are lower-cased: "Ä" stays and is invalid; the Kelvin sign is not "k".
      ["/v1/sys/policies/acl/%C3%84DMIN", "invalid policy name \"\u00c4dmin\": only letters, digits, '.', '_' and '-' are allowed"],
      ["/v1/sys/policies/acl/%E2%84%AAey", "invalid policy name \"\u212aey\": only letters, digits, '.', '_' and '-' are allowed"],
      ["/v1/sys/policy/a%2Bb", "invalid policy name \"a+b\": only letters, digits, '.', '_' and '-' are allowed"],
    ];
    for (const [url, message] of cases) {
      for (const method of ["GET", "PUT", "DELETE"] as const) {
        const response = await app.inject({
          method,
          url,
          headers: as("reader"),
          payload: method === "PUT" ? { policy: READ_SECRET } : undefined,
        });
        expect(response.statusCode, `${method} ${url}`).toBe(400);
        expect(response.json(), `${method} ${url}`).toEqual({ errors: [message] });
      }
    }
    // Not canonical as a path at all: refused by the path check, also before any authorisation.
    // (A trailing "%2E%2E" segment is one light-my-request's URL parser does not resolve.)
    for (const url of [
      "/v1/sys/policies/acl/%20admin",
      "/v1/sys/policies/acl/admin%09",
      "/v1/sys/policies/acl/x%2F%2Fy",
      "/v1/sys/policies/acl/x%2F%2E%2E",
      "/v1/sys/policies/acl/a%ZZ",
      "/v1/sys/policies/acl/a%00b",
    ]) {
      const response = await app.inject({ method: "PUT", url, headers: as("admin"), payload: { policy: READ_SECRET } });
      expect(response.statusCode, url).toBe(400);
      expect(response.json().errors[0], url).toMatch(/^invalid request path/);
    }
    expect(recorded.authorized).toEqual([]);
    expect(recorded.mutations).toEqual([]);
    expect(await policies.list()).toEqual(["admin", "default", "reader", "root"]);
  });

  it("writes take a JSON body only as application/json or without a Content-Type (415 otherwise, before any check)", async () => {
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const response = await app.inject({
        method: "PUT",
        url: "/v1/sys/policies/acl/csrf",
        headers: { ...as("admin"), "content-type": contentType },
        payload: JSON.stringify({ policy: READ_SECRET }),
      });
      expect(response.statusCode, contentType).toBe(415);
      const deleted = await app.inject({
        method: "DELETE",
        url: "/v1/sys/policies/acl/admin",
        headers: { ...as("admin"), "content-type": contentType },
        payload: "x",
      });
      expect(deleted.statusCode, contentType).toBe(415);
    }
    expect(recorded.authorized).toEqual([]);
    expect(recorded.mutations).toEqual([]);
    expect(await policies.get("csrf")).toBeNull();
    const json = await app.inject({
      method: "PUT",
      url: "/v1/sys/policies/acl/csrf",
      headers: { ...as("admin"), "content-type": "Application/JSON; charset=utf-8" },
      payload: JSON.stringify({ policy: READ_SECRET }),
    });
    expect(json.statusCode).toBe(204);
    expect(await app.inject({ method: "DELETE", url: "/v1/sys/policies/acl/csrf", headers: as("admin") }).then((r) => r.statusCode)).toBe(
      204,
    );
  });

  it("X-Vault-Wrap-TTL is 400 (response wrapping is not supported), before any check", async () => {
    const response = await app.inject({
      method: "GET",
      url: "/v1/sys/policies/acl/default",
      headers: { ...as("admin"), "x-vault-wrap-ttl": "60s" },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0]).toContain("X-Vault-Wrap-TTL");
    expect(recorded.authorized).toEqual([]);
  });

  it("a request without a token is 403 before any check", async () => {
    for (const [method, url] of [
      ["GET", "/v1/sys/policies/acl?list=true"],
      ["GET", "/v1/sys/policy/default"],
      ["PUT", "/v1/sys/policies/acl/x"],
      ["DELETE", "/v1/sys/policy/admin"],
    ] as const) {
      const response = await app.inject({ method, url, payload: method === "PUT" ? { policy: READ_SECRET } : undefined });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
      expect(response.json()).toEqual({ errors: ["permission denied"] });
    }
    expect(recorded.authorized).toEqual([]);
    expect(recorded.mutations).toEqual([]);
  });

  it("a list request on one policy is checked as list on its path with a trailing slash, then 405", async () => {
    const response = await app.inject({ method: "GET", url: "/v1/sys/policies/acl/Default?list=true", headers: as("admin") });
    expect(response.statusCode).toBe(405);
    expect(recorded.described.at(-1)).toEqual(["list", "sys/policies/acl/default/"]);
    expect(recorded.authorized.at(-1)).toEqual(["sys/policies/acl/default/", "list"]);
    // A client's own X-Egide-Original-Method header does not make a GET a list request.
    const spoofed = await app.inject({
      method: "GET",
      url: "/v1/sys/policies/acl/default",
      headers: { ...as("admin"), "x-egide-original-method": "LIST" },
    });
    expect(spoofed.statusCode).toBe(200);
    expect(recorded.described.at(-1)).toEqual(["read", "sys/policies/acl/default"]);
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
