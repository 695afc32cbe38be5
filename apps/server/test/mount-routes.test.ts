import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Capability } from "../src/server-context.js";
import { ALL_CAPABILITIES, kvFixture } from "./support/kv-test-context.js";

let fx: Awaited<ReturnType<typeof kvFixture>>;

beforeEach(async () => {
  fx = await kvFixture();
});

afterEach(async () => {
  await fx.close();
});

const call: Awaited<ReturnType<typeof kvFixture>>["call"] = (...args) => fx.call(...args);

const last = () => fx.ctx.described[fx.ctx.described.length - 1];

describe("GET /v1/sys/mounts", () => {
  it("lists every mount with Vault's fields, under data and at the top level", async () => {
    const response = await call("GET", "/v1/sys/mounts");
    expect(response.statusCode).toBe(200);
    const body = response.json();
    const secret = body.data["secret/"];
    expect(secret).toEqual({
      accessor: expect.stringMatching(/^kv_[0-9a-f]{8}$/),
      config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
      deprecation_status: "supported",
      description: "key/value secret storage",
      external_entropy_access: false,
      local: false,
      options: { version: "2" },
      plugin_version: "",
      running_plugin_version: expect.any(String),
      running_sha256: "",
      seal_wrap: false,
      type: "kv",
      uuid: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(body["secret/"]).toEqual(secret);
    expect(body).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0 });
    expect(last()).toEqual({ operation: "read", path: "sys/mounts" });
    expect(fx.ctx.checked).toContainEqual({ path: "sys/mounts", capability: "read" });
  });
});

describe("POST /v1/sys/mounts/:path", () => {
  it("mounts KV v2 (204) and the mount serves requests at once", async () => {
    const response = await call("POST", "/v1/sys/mounts/team/apps", { type: "kv", options: { version: "2" }, description: "apps" });
    expect(response.statusCode).toBe(204);
    expect(response.body).toBe("");
    expect(last()).toEqual({ operation: "update", path: "sys/mounts/team/apps" });
    expect(fx.ctx.checked).toContainEqual({ path: "sys/mounts/team/apps", capability: "update" });
    expect(fx.ctx.mutations).toEqual([204]);
    const mounts = (await call("GET", "/v1/sys/mounts")).json().data;
    expect(mounts["team/apps/"]).toMatchObject({ type: "kv", description: "apps", options: { version: "2" } });
    expect((await call("POST", "/v1/team/apps/data/x", { data: { a: 1 } })).statusCode).toBe(200);
  });

  it("accepts the kv-v2 alias and PUT", async () => {
    expect((await call("PUT", "/v1/sys/mounts/other", { type: "kv-v2" })).statusCode).toBe(204);
    expect((await call("GET", "/v1/sys/mounts")).json().data["other/"].options).toEqual({ version: "2" });
  });

  it("refuses other engine types and KV versions with 400 'unsupported'", async () => {
    for (const body of [{ type: "kv", options: { version: "3" } }, { type: "kv-v2", options: { version: "1" } }, { type: "transit" }]) {
      const response = await call("POST", "/v1/sys/mounts/v1kv", body);
      expect(response.statusCode).toBe(400);
      expect(response.json().errors[0]).toMatch(/unsupported/);
    }
    expect(Object.keys((await call("GET", "/v1/sys/mounts")).json().data)).toEqual(["secret/"]);
  });

  it("refuses reserved and overlapping paths with 400", async () => {
    expect((await call("POST", "/v1/sys/mounts/sys", { type: "kv-v2" })).statusCode).toBe(400);
    expect((await call("POST", "/v1/sys/mounts/auth/kv", { type: "kv-v2" })).statusCode).toBe(400);
    const overlap = await call("POST", "/v1/sys/mounts/secret/inner", { type: "kv-v2" });
    expect(overlap.statusCode).toBe(400);
    expect(overlap.json()).toEqual({ errors: ["path is already in use at secret/"] });
  });

  it("needs update on sys/mounts/<path>", async () => {
    fx.ctx.grant((path) => (path === "sys/mounts/ok" ? (["update"] as Capability[]) : (["create", "read"] as Capability[])));
    expect((await call("POST", "/v1/sys/mounts/ok", { type: "kv-v2" })).statusCode).toBe(204);
    expect((await call("POST", "/v1/sys/mounts/nope", { type: "kv-v2" })).statusCode).toBe(403);
  });
});

describe("GET /v1/sys/mounts/:path", () => {
  it("answers the mount's configuration; 400 when nothing is mounted there", async () => {
    const response = await call("GET", "/v1/sys/mounts/secret");
    expect(response.statusCode).toBe(200);
    expect(response.json().data).toMatchObject({ type: "kv", options: { version: "2" }, description: "key/value secret storage" });
    expect(last()).toEqual({ operation: "read", path: "sys/mounts/secret" });
    const absent = await call("GET", "/v1/sys/mounts/absent");
    expect(absent.statusCode).toBe(400);
    expect(absent.json()).toEqual({ errors: ["No secret engine mount at absent/"] });
  });

  it("tune: reads the tune view and changes the description", async () => {
    const tune = await call("GET", "/v1/sys/mounts/secret/tune");
    expect(tune.statusCode).toBe(200);
    expect(tune.json().data).toEqual({
      default_lease_ttl: 2764800,
      description: "key/value secret storage",
      force_no_cache: false,
      max_lease_ttl: 2764800,
      options: { version: "2" },
    });
    expect((await call("POST", "/v1/sys/mounts/secret/tune", { description: "renamed" })).statusCode).toBe(204);
    expect((await call("GET", "/v1/sys/mounts/secret")).json().data.description).toBe("renamed");
    expect((await call("POST", "/v1/sys/mounts/secret/tune", { options: { version: "1" } })).statusCode).toBe(400);
  });
});

describe("DELETE /v1/sys/mounts/:path", () => {
  it("unmounts (204) and deletes the mount's data", async () => {
    await call("POST", "/v1/secret/data/a", { data: { a: 1 } });
    await call("POST", "/v1/secret/data/b/c", { data: { a: 1 } });
    expect((await fx.storage.list("logical/")).length).toBe(1);
    const response = await call("DELETE", "/v1/sys/mounts/secret");
    expect(response.statusCode).toBe(204);
    expect(last()).toEqual({ operation: "delete", path: "sys/mounts/secret" });
    expect(await fx.storage.list("logical/")).toEqual([]);
    expect((await call("GET", "/v1/sys/mounts")).json().data).toEqual({});
    const gone = await call("GET", "/v1/secret/data/a");
    expect(gone.statusCode).toBe(404);
    expect(gone.json().errors[0]).toContain("no handler for route");
  });

  it("of a path with no mount is 204; of a reserved path 400; needs delete", async () => {
    expect((await call("DELETE", "/v1/sys/mounts/nothing")).statusCode).toBe(204);
    expect((await call("DELETE", "/v1/sys/mounts/sys")).statusCode).toBe(400);
    fx.ctx.grant(() => ["read", "update"]);
    expect((await call("DELETE", "/v1/sys/mounts/secret")).statusCode).toBe(403);
  });

  it("re-mounting the same path starts empty", async () => {
    await call("POST", "/v1/secret/data/a", { data: { a: 1 } });
    await call("DELETE", "/v1/sys/mounts/secret");
    await call("POST", "/v1/sys/mounts/secret", { type: "kv", options: { version: "2" } });
    expect((await call("GET", "/v1/secret/data/a")).statusCode).toBe(404);
  });
});

describe("GET /v1/sys/internal/ui/mounts/:path (vault kv preflight)", () => {
  it("answers the mount of a path with its path and KV version", async () => {
    const response = await call("GET", "/v1/sys/internal/ui/mounts/secret/app/db");
    expect(response.statusCode).toBe(200);
    expect(response.json().data).toMatchObject({ path: "secret/", type: "kv", options: { version: "2" } });
  });

  it("is 403 when no mount matches, like Vault", async () => {
    const response = await call("GET", "/v1/sys/internal/ui/mounts/nothing/here");
    expect(response.statusCode).toBe(403);
    expect(response.json().errors[0]).toContain("preflight capability check returned 403");
  });

  it("is 403 unless the token's policies grant something on the mount (Vault's hasMountAccess), with the same answer as no mount", async () => {
    const noMount = (await call("GET", "/v1/sys/internal/ui/mounts/nothing/here")).json();
    fx.ctx.grant((path) => (path.startsWith("other/") ? ALL_CAPABILITIES : []));
    const refused = await call("GET", "/v1/sys/internal/ui/mounts/secret/app/db");
    expect(refused.statusCode).toBe(403);
    expect(refused.json().errors[0]).toBe(
      'preflight capability check returned 403, please ensure client\'s policies grant access to path "secret/app/db/"',
    );
    expect(noMount.errors[0]).toBe(
      'preflight capability check returned 403, please ensure client\'s policies grant access to path "nothing/here/"',
    );
    expect(fx.ctx.mountAccess.at(-1)).toBe("secret/");
    fx.ctx.grant((path) => (path === "secret/" ? ["deny"] : []));
    expect((await call("GET", "/v1/sys/internal/ui/mounts/secret/app/db")).statusCode).toBe(403);
    // Any capability but deny on the mount or below it will do.
    for (const granted of [["list"], ["read"], ["create"], ["sudo"]] as Capability[][]) {
      fx.ctx.grant((path) => (path === "secret/" ? granted : []));
      expect((await call("GET", "/v1/sys/internal/ui/mounts/secret/app/db")).statusCode, granted.join()).toBe(200);
    }
    fx.ctx.grant((path) => (path === "secret/app/db" ? ["read"] : []));
    const below = await call("GET", "/v1/sys/internal/ui/mounts/secret/app/db");
    expect(below.statusCode).toBe(200);
    expect(below.json().data).toMatchObject({ path: "secret/", type: "kv" });
    // The endpoint itself needs no capability: only a token (no ACL check was made).
    expect(fx.ctx.checked).toEqual([]);
  });

  it("the path has no trailing slash in its canonical form; an empty path is 400", async () => {
    const response = await call("GET", "/v1/sys/internal/ui/mounts/secret/");
    expect(response.statusCode).toBe(200);
    expect(fx.ctx.described.at(-1)).toEqual({ operation: "read", path: "sys/internal/ui/mounts/secret" });
    expect(fx.ctx.mountAccess).toEqual(["secret/"]);
    expect((await call("GET", "/v1/sys/internal/ui/mounts/")).statusCode).toBe(400);
  });
});

describe("canonical mount paths", () => {
  it("a mount path is checked and acted on without its trailing slash", async () => {
    fx.ctx.grant((path) => (path === "sys/mounts/team" ? ["read", "update", "delete"] : []));
    expect((await call("POST", "/v1/sys/mounts/team/", { type: "kv-v2" })).statusCode).toBe(204);
    expect(last()).toEqual({ operation: "update", path: "sys/mounts/team" });
    expect(fx.ctx.checked.every((check) => check.path === "sys/mounts/team")).toBe(true);
    expect((await fx.mounts.list()).map((mount) => mount.path)).toEqual(["secret/", "team/"]);
    const read = await call("GET", "/v1/sys/mounts/team/");
    expect(read.statusCode).toBe(200);
    expect(last()).toEqual({ operation: "read", path: "sys/mounts/team" });
    expect((await call("DELETE", "/v1/sys/mounts/team/")).statusCode).toBe(204);
    expect(last()).toEqual({ operation: "delete", path: "sys/mounts/team" });
    expect((await fx.mounts.list()).map((mount) => mount.path)).toEqual(["secret/"]);
    expect(fx.ctx.checked).toEqual([
      { path: "sys/mounts/team", capability: "update" },
      { path: "sys/mounts/team", capability: "update" },
      { path: "sys/mounts/team", capability: "read" },
      { path: "sys/mounts/team", capability: "read" },
      { path: "sys/mounts/team", capability: "delete" },
    ]);
  });

  it("a deny on a mount path cannot be side-stepped with a trailing slash", async () => {
    fx.ctx.grant((path) => (path === "sys/mounts/secret" ? ["deny"] : ALL_CAPABILITIES));
    for (const url of ["/v1/sys/mounts/secret", "/v1/sys/mounts/secret/"]) {
      expect((await call("DELETE", url)).statusCode, url).toBe(403);
      expect((await call("POST", url, { type: "kv-v2" })).statusCode, url).toBe(403);
      expect((await call("GET", url)).statusCode, url).toBe(403);
    }
    expect((await fx.mounts.list()).map((mount) => mount.path)).toEqual(["secret/"]);
    expect(fx.ctx.mutations).toEqual([]);
  });

  it("a list request on a mount route is 405 (after the list check, on the path with a trailing slash)", async () => {
    const one = await call("GET", "/v1/sys/mounts/secret?list=true");
    expect(one.statusCode).toBe(405);
    expect(fx.ctx.checked.at(-1)).toEqual({ path: "sys/mounts/secret/", capability: "list" });
    expect(last()).toEqual({ operation: "list", path: "sys/mounts/secret/" });
    const all = await call("GET", "/v1/sys/mounts?list=true");
    expect(all.statusCode).toBe(405);
    expect(fx.ctx.checked.at(-1)).toEqual({ path: "sys/mounts/", capability: "list" });
    fx.ctx.grant(() => ["read"]);
    expect((await call("GET", "/v1/sys/mounts/secret?list=true")).statusCode).toBe(403);
  });

  it("refuses non-canonical mount paths with 400 before any check", async () => {
    fx.ctx.grant(() => []);
    for (const url of [
      "/v1/sys/mounts/%20team",
      "/v1/sys/mounts/team%20",
      "/v1/sys/mounts/a%2F%2Fb",
      "/v1/sys/mounts/a%2F..%2Fsecret",
      "/v1/sys/mounts/te%00am",
    ]) {
      const response = await call("POST", url, { type: "kv-v2" });
      expect(response.statusCode, url).toBe(400);
      expect(response.json().errors[0], url).toMatch(/^invalid request path: /);
      expect((await call("DELETE", url)).statusCode, url).toBe(400);
    }
    expect(fx.ctx.checked).toEqual([]);
    expect((await fx.mounts.list()).map((mount) => mount.path)).toEqual(["secret/"]);
  });

  it("writes take a JSON body only as application/json or without a Content-Type (415 otherwise, before any check)", async () => {
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"]) {
      expect((await call("POST", "/v1/sys/mounts/csrf", { type: "kv-v2" }, { "content-type": contentType })).statusCode, contentType).toBe(
        415,
      );
      expect((await call("PUT", "/v1/sys/mounts/csrf", { type: "kv-v2" }, { "content-type": contentType })).statusCode, contentType).toBe(
        415,
      );
      expect((await call("DELETE", "/v1/sys/mounts/secret", undefined, { "content-type": contentType })).statusCode, contentType).toBe(415);
    }
    expect(fx.ctx.checked).toEqual([]);
    expect(fx.ctx.mutations).toEqual([]);
    expect((await fx.mounts.list()).map((mount) => mount.path)).toEqual(["secret/"]);
    expect(
      (await call("POST", "/v1/sys/mounts/json", { type: "kv-v2" }, { "content-type": "application/json; charset=utf-8" })).statusCode,
    ).toBe(204);
    const bare = await fx.app.inject({ method: "POST", url: "/v1/sys/mounts/bare", payload: JSON.stringify({ type: "kv-v2" }) });
    expect(bare.statusCode).toBe(204);
    expect((await fx.mounts.list()).map((mount) => mount.path)).toEqual(["bare/", "json/", "secret/"]);
  });
});
