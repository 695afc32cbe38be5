import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CAS_MISMATCH, CAS_REQUIRED_IGNORED } from "../src/kv/kv-v2-engine.js";
import { MountTable } from "../src/mounts/mount-table.js";
import type { Capability } from "../src/server-context.js";
import { kvFixture } from "./support/kv-test-context.js";
import { VAULT_ENVELOPE_KEYS } from "./support/vault-response-keys.js";

let fx: Awaited<ReturnType<typeof kvFixture>>;

beforeEach(async () => {
  fx = await kvFixture();
});

afterEach(async () => {
  await fx.close();
});

const call: Awaited<ReturnType<typeof kvFixture>>["call"] = (...args) => fx.call(...args);

// A list request as Vault also accepts it (a client's LIST arrives rewritten to this by the
// server's listener; a client's own X-Egide-Original-Method header is not trusted).
const list = (url: string) => fx.app.inject({ method: "GET", url: `${url}?list=true` });
const patch = (url: string, payload: unknown, contentType = "application/merge-patch+json") =>
  fx.app.inject({ method: "PATCH", url, headers: { "content-type": contentType }, payload: JSON.stringify(payload) });

describe("data", () => {
  it("write answers Vault's envelope with the version metadata", async () => {
    const response = await call("POST", "/v1/secret/data/app/db", { data: { password: "p" } });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(Object.keys(body).sort()).toEqual(VAULT_ENVELOPE_KEYS);
    expect(body).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, wrap_info: null, warnings: null, auth: null });
    expect(body.data).toEqual({
      created_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
      custom_metadata: null,
      deletion_time: "",
      destroyed: false,
      version: 1,
    });
  });

  it("PUT writes too; read answers data and metadata; ?version= reads an older one", async () => {
    await call("PUT", "/v1/secret/data/k", { data: { v: 1 } });
    await call("PUT", "/v1/secret/data/k", { data: { v: 2 } });
    const latest = await call("GET", "/v1/secret/data/k");
    expect(latest.statusCode).toBe(200);
    expect(latest.json().data).toMatchObject({ data: { v: 2 }, metadata: { version: 2, destroyed: false, deletion_time: "" } });
    expect((await call("GET", "/v1/secret/data/k?version=1")).json().data.data).toEqual({ v: 1 });
    expect((await call("GET", "/v1/secret/data/k?version=x")).statusCode).toBe(400);
  });

  it("an absent secret is 404 with an empty errors array", async () => {
    const response = await call("GET", "/v1/secret/data/none");
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ errors: [] });
  });

  it("a failed check-and-set is 400 with Vault's message; cas 0 creates", async () => {
    expect((await call("POST", "/v1/secret/data/k", { data: { a: 1 }, options: { cas: 0 } })).statusCode).toBe(200);
    const conflict = await call("POST", "/v1/secret/data/k", { data: { a: 2 }, options: { cas: 0 } });
    expect(conflict.statusCode).toBe(400);
    expect(conflict.json()).toEqual({ errors: [CAS_MISMATCH] });
  });

  it("a write without data is 400", async () => {
    const response = await call("POST", "/v1/secret/data/k", { options: {} });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ errors: ["no data provided"] });
    expect((await call("POST", "/v1/secret/data/k")).statusCode).toBe(400);
  });

  it("DELETE soft-deletes: 204, then the read is 404 with the metadata in data", async () => {
    await call("POST", "/v1/secret/data/k", { data: { a: 1 } });
    expect((await call("DELETE", "/v1/secret/data/k")).statusCode).toBe(204);
    const read = await call("GET", "/v1/secret/data/k");
    expect(read.statusCode).toBe(404);
    const body = read.json();
    expect(body.data.data).toBeNull();
    expect(body.data.metadata).toMatchObject({ version: 1, destroyed: false });
    expect(body.data.metadata.deletion_time).not.toBe("");
    expect(body.request_id).toEqual(expect.any(String));
  });

  it("delete/, undelete/ and destroy/ take versions and answer 204", async () => {
    await call("POST", "/v1/secret/data/k", { data: { a: 1 } });
    await call("POST", "/v1/secret/data/k", { data: { a: 2 } });
    expect((await call("POST", "/v1/secret/delete/k", { versions: [1] })).statusCode).toBe(204);
    expect((await call("GET", "/v1/secret/data/k?version=1")).statusCode).toBe(404);
    expect((await call("POST", "/v1/secret/undelete/k", { versions: [1] })).statusCode).toBe(204);
    expect((await call("GET", "/v1/secret/data/k?version=1")).statusCode).toBe(200);
    expect((await call("PUT", "/v1/secret/destroy/k", { versions: [2] })).statusCode).toBe(204);
    const destroyed = await call("GET", "/v1/secret/data/k");
    expect(destroyed.statusCode).toBe(404);
    expect(destroyed.json().data.metadata).toMatchObject({ version: 2, destroyed: true });
    const missingVersions = await call("POST", "/v1/secret/delete/k", {});
    expect(missingVersions.statusCode).toBe(400);
    expect(missingVersions.json()).toEqual({ errors: ["No version number provided"] });
  });

  it("PATCH applies a JSON merge patch (null deletes); needs the merge-patch content type", async () => {
    await call("POST", "/v1/secret/data/k", { data: { a: 1, b: 2 } });
    const response = await patch("/v1/secret/data/k", { data: { b: null, c: 3 } });
    expect(response.statusCode).toBe(200);
    expect(response.json().data.version).toBe(2);
    expect((await call("GET", "/v1/secret/data/k")).json().data.data).toEqual({ a: 1, c: 3 });
    const wrongType = await patch("/v1/secret/data/k", { data: { d: 4 } }, "application/json");
    expect(wrongType.statusCode).toBe(415);
    expect(wrongType.json().errors[0]).toContain("application/merge-patch+json");
    expect((await patch("/v1/secret/data/absent", { data: { a: 1 } })).statusCode).toBe(404);
  });

  it("PATCH of a deleted version is 404 with its metadata", async () => {
    await call("POST", "/v1/secret/data/k", { data: { a: 1 } });
    await call("DELETE", "/v1/secret/data/k");
    const response = await patch("/v1/secret/data/k", { data: { a: 2 } });
    expect(response.statusCode).toBe(404);
    expect(response.json().data).toMatchObject({ version: 1, destroyed: false });
    expect(fx.ctx.mutations).toEqual([200, 204]);
  });

  it("subkeys answers the structure without values", async () => {
    await call("POST", "/v1/secret/data/k", { data: { a: "x", b: { c: "y" } } });
    const response = await call("GET", "/v1/secret/subkeys/k?depth=0");
    expect(response.statusCode).toBe(200);
    expect(response.json().data.subkeys).toEqual({ a: null, b: { c: null } });
  });
});

describe("metadata and config", () => {
  it("LIST (GET ?list=true) answers keys with folders; empty is 404", async () => {
    for (const path of ["app/db", "app/api/key", "web", "web/front"]) await call("POST", `/v1/secret/data/${path}`, { data: { a: 1 } });
    const root = await list("/v1/secret/metadata/");
    expect(root.statusCode).toBe(200);
    expect(root.json().data).toEqual({ keys: ["app/", "web", "web/"] });
    expect((await list("/v1/secret/metadata/app")).json().data).toEqual({ keys: ["api/", "db"] });
    expect((await list("/v1/secret/metadata")).json().data).toEqual({ keys: ["app/", "web", "web/"] });
    const empty = await list("/v1/secret/metadata/nothing/");
    expect(empty.statusCode).toBe(404);
    expect(empty.json()).toEqual({ errors: [] });
  });

  it("GET, POST, PATCH and DELETE metadata", async () => {
    expect((await call("GET", "/v1/secret/metadata/k")).statusCode).toBe(404);
    expect((await call("POST", "/v1/secret/metadata/k", { max_versions: 3, custom_metadata: { owner: "me" } })).statusCode).toBe(204);
    await call("POST", "/v1/secret/data/k", { data: { a: 1 } });
    const read = await call("GET", "/v1/secret/metadata/k");
    expect(read.statusCode).toBe(200);
    expect(read.json().data).toMatchObject({
      max_versions: 3,
      current_version: 1,
      custom_metadata: { owner: "me" },
      versions: { "1": { destroyed: false } },
    });
    expect((await patch("/v1/secret/metadata/k", { custom_metadata: { team: "t" } })).statusCode).toBe(204);
    expect((await call("GET", "/v1/secret/metadata/k")).json().data.custom_metadata).toEqual({ owner: "me", team: "t" });
    expect((await patch("/v1/secret/metadata/none", { max_versions: 1 })).statusCode).toBe(404);
    expect((await call("DELETE", "/v1/secret/metadata/k")).statusCode).toBe(204);
    expect((await call("GET", "/v1/secret/data/k")).statusCode).toBe(404);
    expect((await call("GET", "/v1/secret/metadata/k")).statusCode).toBe(404);
  });

  it("a metadata write overridden by the mount's cas_required answers 200 with the warning", async () => {
    expect((await call("POST", "/v1/secret/config", { cas_required: true })).statusCode).toBe(204);
    const response = await call("POST", "/v1/secret/metadata/k", { cas_required: false });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ data: null, warnings: [CAS_REQUIRED_IGNORED] });
    expect(fx.ctx.mutations).toEqual([204, 200]);
  });

  it("config reads and writes", async () => {
    expect((await call("GET", "/v1/secret/config")).json().data).toEqual({
      cas_required: false,
      delete_version_after: "0s",
      max_versions: 0,
    });
    expect((await call("PUT", "/v1/secret/config", { max_versions: 4, delete_version_after: "1h" })).statusCode).toBe(204);
    expect((await call("GET", "/v1/secret/config")).json().data).toEqual({
      cas_required: false,
      delete_version_after: "1h0m0s",
      max_versions: 4,
    });
    const required = await call("POST", "/v1/secret/config", { cas_required: true });
    expect(required.statusCode).toBe(204);
    const refused = await call("POST", "/v1/secret/data/k", { data: { a: 1 } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().errors).toEqual(["check-and-set parameter required for this call"]);
  });
});

describe("routing", () => {
  it("a path under no mount is 404 'no handler for route'", async () => {
    const response = await call("GET", "/v1/nomount/data/x");
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ errors: ['no handler for route "nomount/data/x". route entry not found.'] });
  });

  it("a path the engine does not serve is 404 'unsupported path'; a method it does not serve is 405", async () => {
    for (const url of ["/v1/secret/foo", "/v1/secret/data/", "/v1/secret", "/v1/secret/config/x"]) {
      const response = await call("GET", url);
      expect(response.statusCode).toBe(404);
      expect(response.json().errors[0]).toContain("unsupported path");
    }
    expect((await call("GET", "/v1/secret/delete/k")).statusCode).toBe(405);
    // LIST adds a trailing slash, which no data/ path has: Vault's "unsupported path" too.
    expect((await list("/v1/secret/data/k")).statusCode).toBe(404);
    expect((await list("/v1/secret/subkeys/k")).statusCode).toBe(405);
    expect((await call("DELETE", "/v1/secret/config")).statusCode).toBe(405);
    expect((await call("POST", "/v1/secret/subkeys/k", {})).statusCode).toBe(405);
  });

  it("does not shadow explicit routes", async () => {
    expect((await call("GET", "/v1/sys/health")).json()).toEqual({ initialized: true });
    expect((await call("POST", "/v1/auth/token/create", {})).json()).toEqual({ auth: { client_token: "x" } });
    expect((await call("GET", "/v1/sys/mounts")).json().data).toHaveProperty("secret/");
  });

  it("serves any KV v2 mount, nested paths included", async () => {
    await call("POST", "/v1/sys/mounts/team/kv", { type: "kv", options: { version: "2" } });
    expect((await call("POST", "/v1/team/kv/data/x", { data: { t: 1 } })).statusCode).toBe(200);
    expect((await call("GET", "/v1/team/kv/data/x")).json().data.data).toEqual({ t: 1 });
    expect((await call("GET", "/v1/secret/data/x")).statusCode).toBe(404);
  });

  it("a write into a mount another instance just disabled is refused and writes nothing", async () => {
    const stale = new MountTable(fx.storage, { cacheMs: 60_000 });
    const { buildKvTestApp } = await import("./support/kv-test-context.js");
    const staleApp = await buildKvTestApp(fx.ctx, stale);
    try {
      expect((await staleApp.inject({ method: "GET", url: "/v1/secret/data/x" })).statusCode).toBe(404);
      expect((await call("DELETE", "/v1/sys/mounts/secret")).statusCode).toBe(204);
      const response = await staleApp.inject({
        method: "POST",
        url: "/v1/secret/data/x",
        headers: { "content-type": "application/json" },
        payload: '{"data":{"a":1}}',
      });
      expect(response.statusCode).toBe(404);
      expect(response.json().errors[0]).toContain("no handler for route");
      expect(await fx.storage.list("logical/")).toEqual([]);
    } finally {
      await staleApp.close();
    }
  });
});

describe("capabilities", () => {
  it("a write authorised as a create is refused (409) if the key was created between the check and the write", async () => {
    // Before: the existence check decided create vs update outside the write's transaction, so
    // a caller holding only create could overwrite a secret another request created meanwhile.
    fx.ctx.grant((path) => (path === "secret/data/race" ? ["create"] : []));
    const original = fx.ctx.authorizer.allowOperation.bind(fx.ctx.authorizer);
    let raced = false;
    fx.ctx.authorizer.allowOperation = async (caller, check, capabilityCheckOnly) => {
      // The final capability check of the outer write, after its existence check said "create":
      // another request creates the key now.
      if (
        !raced &&
        check.operation === "create" &&
        capabilityCheckOnly &&
        fx.ctx.checked.filter((c) => c.capability === "create").length >= 1
      ) {
        raced = true;
        expect((await call("POST", "/v1/secret/data/race", { data: { v: "first" } })).statusCode).toBe(200);
      }
      return original(caller, check, capabilityCheckOnly);
    };
    const second = await call("POST", "/v1/secret/data/race", { data: { v: "second" } });
    expect(raced).toBe(true);
    expect(second.statusCode, second.body).toBe(409);
    fx.ctx.authorizer.allowOperation = original;
    fx.ctx.grant(() => ["read"]);
    const read = await call("GET", "/v1/secret/data/race");
    expect(read.json().data.data).toEqual({ v: "first" });
    expect(read.json().data.metadata.version).toBe(1);
  });

  const last = () => fx.ctx.described[fx.ctx.described.length - 1];

  it("describes and checks Vault's operation on the request path", async () => {
    await call("POST", "/v1/secret/data/k", { data: { a: 1 } });
    expect(last()).toEqual({ operation: "create", path: "secret/data/k" });
    await call("POST", "/v1/secret/data/k", { data: { a: 2 } });
    expect(last()).toEqual({ operation: "update", path: "secret/data/k" });
    await call("GET", "/v1/secret/data/k");
    expect(last()).toEqual({ operation: "read", path: "secret/data/k" });
    await list("/v1/secret/metadata");
    expect(last()).toEqual({ operation: "list", path: "secret/metadata/" });
    await patch("/v1/secret/data/k", { data: { b: 1 } });
    expect(last()).toEqual({ operation: "patch", path: "secret/data/k" });
    await call("POST", "/v1/secret/destroy/k", { versions: [1] });
    expect(last()).toEqual({ operation: "update", path: "secret/destroy/k" });
    await call("POST", "/v1/secret/metadata/new", { max_versions: 2 });
    expect(last()).toEqual({ operation: "create", path: "secret/metadata/new" });
    await call("POST", "/v1/secret/metadata/new", { max_versions: 3 });
    expect(last()).toEqual({ operation: "update", path: "secret/metadata/new" });
    await call("DELETE", "/v1/secret/metadata/new");
    expect(last()).toEqual({ operation: "delete", path: "secret/metadata/new" });
    expect(fx.ctx.checked.some((check) => check.path === "secret/metadata/" && check.capability === "list")).toBe(true);
  });

  function policy(rules: Record<string, Capability[]>) {
    fx.ctx.grant((path) => rules[path] ?? []);
  }

  it("create-only can create but not update; update-only can update but not create", async () => {
    policy({ "secret/data/k": ["create"] });
    expect((await call("POST", "/v1/secret/data/k", { data: { a: 1 } })).statusCode).toBe(200);
    const refused = await call("POST", "/v1/secret/data/k", { data: { a: 2 } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual({ errors: ["permission denied"] });
    policy({ "secret/data/k": ["update"], "secret/data/other": ["update"] });
    expect((await call("POST", "/v1/secret/data/k", { data: { a: 2 } })).statusCode).toBe(200);
    expect((await call("POST", "/v1/secret/data/other", { data: { a: 1 } })).statusCode).toBe(403);
  });

  it("read, list, patch and delete each need their capability; deny wins", async () => {
    await call("POST", "/v1/secret/data/k", { data: { a: 1 } });
    policy({ "secret/data/k": ["read"] });
    expect((await call("GET", "/v1/secret/data/k")).statusCode).toBe(200);
    expect((await patch("/v1/secret/data/k", { data: { a: 2 } })).statusCode).toBe(403);
    expect((await call("DELETE", "/v1/secret/data/k")).statusCode).toBe(403);
    expect((await list("/v1/secret/metadata/")).statusCode).toBe(403);
    policy({ "secret/metadata/": ["list"], "secret/data/k": ["patch", "delete"] });
    expect((await list("/v1/secret/metadata")).statusCode).toBe(200);
    expect((await patch("/v1/secret/data/k", { data: { a: 2 } })).statusCode).toBe(200);
    expect((await call("DELETE", "/v1/secret/data/k")).statusCode).toBe(204);
    policy({ "secret/data/k": ["create", "update", "deny"] });
    expect((await call("POST", "/v1/secret/data/k", { data: { a: 3 } })).statusCode).toBe(403);
  });

  it("delete/, undelete/, destroy/ and config writes need update, not create", async () => {
    await call("POST", "/v1/secret/data/k", { data: { a: 1 } });
    policy({ "secret/destroy/k": ["create"], "secret/config": ["create"] });
    expect((await call("PUT", "/v1/secret/destroy/k", { versions: [1] })).statusCode).toBe(403);
    expect((await call("POST", "/v1/secret/config", { max_versions: 1 })).statusCode).toBe(403);
    policy({ "secret/destroy/k": ["update"] });
    expect((await call("PUT", "/v1/secret/destroy/k", { versions: [1] })).statusCode).toBe(204);
  });

  it("checks permission before revealing whether a mount exists", async () => {
    policy({});
    expect((await call("GET", "/v1/nomount/x")).statusCode).toBe(403);
    expect((await call("POST", "/v1/nomount/x", { data: {} })).statusCode).toBe(403);
  });
});

describe("canonical request paths", () => {
  const snapshot = () => ({ checked: fx.ctx.checked.length, mutations: fx.ctx.mutations.length });

  /** One request written on a socket as is (light-my-request's URL parser would resolve dot segments). */
  async function raw(method: string, target: string): Promise<{ status: number; body: string }> {
    if (fx.app.server.listening === false) await fx.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = fx.app.server.address() as AddressInfo;
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      let data = "";
      socket.on("data", (chunk: Buffer) => {
        data += chunk.toString("utf8");
      });
      socket.on("error", reject);
      socket.on("end", () => {
        const [head = "", body = ""] = data.split("\r\n\r\n");
        resolve({ status: Number(head.split(" ")[1]), body });
      });
      socket.write(`${method} ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
  }

  it("decodes the path exactly once, then checks and acts on that path", async () => {
    fx.ctx.grant((path) => (path === "secret/data/app" ? ["create", "update", "read"] : []));
    expect((await call("POST", "/v1/secret/data/%61pp", { data: { a: 1 } })).statusCode).toBe(200);
    expect(fx.ctx.described.at(-1)).toEqual({ operation: "create", path: "secret/data/app" });
    expect((await call("GET", "/v1/secret/data/app")).json().data.data).toEqual({ a: 1 });
    // Twice-encoded: decoded once to the literal "%61pp", another path (and not granted).
    expect((await call("GET", "/v1/secret/data/%2561pp")).statusCode).toBe(403);
    expect(fx.ctx.checked.at(-1)).toEqual({ path: "secret/data/%61pp", capability: "read" });
    expect(fx.ctx.checked.every((check) => check.path === "secret/data/app" || check.path === "secret/data/%61pp")).toBe(true);
  });

  it.each([
    ["malformed percent-encoding", "/v1/secret/data/a%zz"],
    ["a truncated escape", "/v1/secret/data/a%4"],
    ["bytes that are not UTF-8", "/v1/secret/data/a%C3%28"],
    ["a NUL", "/v1/secret/data/a%00b"],
    ["a control character", "/v1/secret/data/a%0Ab"],
    ["DEL", "/v1/secret/data/a%7Fb"],
    ["a C1 control", "/v1/secret/data/a%C2%85b"],
    ["a leading space", "/v1/secret/data/%20k"],
    ["a trailing space", "/v1/secret/data/k%20"],
    ["a trailing tab", "/v1/secret/data/k%09"],
    ["a leading no-break space", "/v1/secret/data/%C2%A0k"],
    ["a trailing zero-width space", "/v1/secret/data/k%E2%80%8B"],
    ["space at a mount segment's end", "/v1/secret%20/data/k"],
    ["an encoded empty segment", "/v1/secret/data/a%2F%2Fb"],
    ["an encoded '..' segment", "/v1/secret/data/x%2F..%2Fadmin"],
    ["an encoded '.' segment", "/v1/secret/data/x%2F.%2Fk"],
  ])("refuses %s with 400 before any authorisation: %s", async (_what, url) => {
    fx.ctx.grant(() => []);
    const before = snapshot();
    for (const method of ["GET", "POST", "DELETE"] as const) {
      const response = await call(method, url, method === "POST" ? { data: { a: 1 } } : undefined);
      expect(response.statusCode, `${method} ${url}`).toBe(400);
      expect(response.json().errors[0]).toMatch(/^invalid request path: /);
    }
    expect(snapshot()).toEqual(before);
  });

  it("refuses empty, '.' and '..' segments sent as is (not resolved), before any authorisation", async () => {
    await call("POST", "/v1/secret/data/admin", { data: { a: 1 } });
    // Everything under secret/data/ but admin: no spelling reaches admin.
    fx.ctx.grant((path) => (path === "secret/data/admin" ? ["deny"] : ["read", "create", "update", "delete"]));
    const before = snapshot();
    for (const target of [
      "/v1/secret/data/x/../admin",
      "/v1/secret/data/./admin",
      "/v1/secret//data/admin",
      "/v1//secret/data/admin",
      "/v1/secret/data/admin/.",
      "/v1/secret/data/x/%2e%2e/admin",
    ]) {
      for (const method of ["GET", "DELETE"]) {
        const response = await raw(method, target);
        expect(response.status, `${method} ${target}`).toBe(400);
        expect(JSON.parse(response.body).errors[0], target).toMatch(/^invalid request path: /);
      }
    }
    expect(snapshot()).toEqual(before);
    expect((await raw("GET", "/v1/secret/data/admin")).status).toBe(403);
    expect((await raw("GET", "/v1/secret/data/x")).status).toBe(404);
  });

  it("list requests are checked on the path with a trailing slash; a client's X-Egide-Original-Method header makes no list", async () => {
    await call("POST", "/v1/secret/data/app/db", { data: { a: 1 } });
    fx.ctx.grant((path) => (path === "secret/metadata/app/" ? ["list"] : []));
    expect((await list("/v1/secret/metadata/app")).statusCode).toBe(200);
    expect(fx.ctx.checked.at(-1)).toEqual({ path: "secret/metadata/app/", capability: "list" });
    expect((await call("GET", "/v1/secret/metadata/app/?list=1")).statusCode).toBe(200);
    const spoofed = await call("GET", "/v1/secret/metadata/app/", undefined, { "x-egide-original-method": "LIST" });
    expect(spoofed.statusCode).toBe(403);
    expect(fx.ctx.checked.at(-1)).toEqual({ path: "secret/metadata/app/", capability: "read" });
    expect(fx.ctx.described.at(-1)).toEqual({ operation: "read", path: "secret/metadata/app/" });
  });

  it("X-Vault-Wrap-TTL is 400 before any authorisation: the request is not run", async () => {
    await call("POST", "/v1/secret/data/k", { data: { a: 1 } });
    const before = snapshot();
    const read = await call("GET", "/v1/secret/data/k", undefined, { "x-vault-wrap-ttl": "5m" });
    expect(read.statusCode).toBe(400);
    expect(read.json().errors[0]).toContain("X-Vault-Wrap-TTL");
    expect((await call("POST", "/v1/secret/data/k", { data: { a: 2 } }, { "x-vault-wrap-ttl": "5m" })).statusCode).toBe(400);
    expect(snapshot()).toEqual(before);
    expect((await call("GET", "/v1/secret/data/k")).json().data.metadata.version).toBe(1);
  });

  it("secrets engine paths take JSON whatever the Content-Type (the 415 is for sys/ only)", async () => {
    expect((await call("POST", "/v1/secret/data/k", { data: { a: 1 } }, { "content-type": "text/plain" })).statusCode).toBe(200);
    expect((await call("GET", "/v1/secret/data/k")).json().data.data).toEqual({ a: 1 });
  });
});
