/**
 * A KV version 1 mount behind the real request pipeline (in-process, SQLite in memory): the
 * engine is picked by the mount's version, every request is described and authorised on the
 * plain path `<mount>/<path>` (folders with a trailing `/` for lists), the create/update
 * existence check, the sub-paths of KV version 2 being plain secrets, and the mount API.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KV_V1_DEFAULT_LEASE_SECONDS } from "../src/kv/kv-v1-engine.js";
import { mountStoragePrefix } from "../src/mounts/mount-table.js";
import type { Capability } from "../src/server-context.js";
import { ALL_CAPABILITIES, kvFixture } from "./support/kv-test-context.js";
import { VAULT_ENVELOPE_KEYS } from "./support/vault-response-keys.js";

let fx: Awaited<ReturnType<typeof kvFixture>>;

beforeEach(async () => {
  fx = await kvFixture();
  const mounted = await fx.call("POST", "/v1/sys/mounts/kv1", { type: "kv", options: { version: "1" } });
  expect(mounted.statusCode).toBe(204);
  fx.ctx.described.length = 0;
  fx.ctx.checked.length = 0;
  fx.ctx.mutations.length = 0;
});

afterEach(async () => {
  await fx.close();
});

const call: Awaited<ReturnType<typeof kvFixture>>["call"] = (...args) => fx.call(...args);
const list = (url: string) => fx.app.inject({ method: "GET", url: `${url}?list=true` });
const last = () => fx.ctx.described[fx.ctx.described.length - 1];

describe("dispatch by the mount's version", () => {
  it("writes 204, reads Vault's envelope with the secret as data and the default lease_duration", async () => {
    const write = await call("POST", "/v1/kv1/my-secret", { foo: "bar", n: 1 });
    expect(write.statusCode).toBe(204);
    expect(write.body).toBe("");
    expect(fx.ctx.mutations).toEqual([204]);
    const read = await call("GET", "/v1/kv1/my-secret");
    expect(read.statusCode).toBe(200);
    const body = read.json();
    expect(Object.keys(body).sort()).toEqual(VAULT_ENVELOPE_KEYS);
    expect(body).toMatchObject({
      data: { foo: "bar", n: 1 },
      lease_duration: KV_V1_DEFAULT_LEASE_SECONDS,
      lease_id: "",
      renewable: false,
      auth: null,
      wrap_info: null,
      warnings: null,
    });
  });

  it("the same paths under a KV v2 mount are still KV v2 (secret/ is untouched by kv1/)", async () => {
    await call("POST", "/v1/kv1/app", { a: "v1" });
    expect((await call("GET", "/v1/secret/app")).statusCode).toBe(404);
    expect((await call("POST", "/v1/secret/data/app", { data: { a: "v2" } })).statusCode).toBe(200);
    expect((await call("GET", "/v1/secret/data/app")).json().data.data).toEqual({ a: "v2" });
    expect((await call("GET", "/v1/kv1/app")).json().data).toEqual({ a: "v1" });
  });

  it("KV v2's sub-paths are plain secret names under a v1 mount (Vault's MatchAllRegex path)", async () => {
    // A v2-shaped write stores the body as it is, under the name `data/x`.
    expect((await call("POST", "/v1/kv1/data/x", { data: { nested: true } })).statusCode).toBe(204);
    expect((await call("GET", "/v1/kv1/data/x")).json().data).toEqual({ data: { nested: true } });
    expect((await call("GET", "/v1/kv1/x")).statusCode).toBe(404);
    // metadata/, config, subkeys/ … are absent secrets, not endpoints.
    for (const path of ["metadata/x", "config", "subkeys/data/x", "delete/x"]) {
      const response = await call("GET", `/v1/kv1/${path}`);
      expect(response.statusCode, path).toBe(404);
      expect(response.json(), path).toEqual({ errors: [] });
    }
    const listed = await list("/v1/kv1/metadata");
    expect(listed.statusCode).toBe(404);
    expect((await list("/v1/kv1/data")).json().data).toEqual({ keys: ["x"] });
    // KV v2's soft delete of versions is a write of a secret named `delete/x`, not a deletion.
    expect((await call("POST", "/v1/kv1/delete/data/x", { versions: [1] })).statusCode).toBe(204);
    expect((await call("GET", "/v1/kv1/data/x")).statusCode).toBe(200);
  });

  it("PATCH is Vault's 405 on a v1 mount (after the merge-patch Content-Type check); HEAD follows GET", async () => {
    await call("POST", "/v1/kv1/p", { a: 1 });
    const patch = await fx.app.inject({
      method: "PATCH",
      url: "/v1/kv1/p",
      headers: { "content-type": "application/merge-patch+json" },
      payload: JSON.stringify({ a: 2 }),
    });
    expect(patch.statusCode).toBe(405);
    expect(patch.json()).toEqual({ errors: ["1 error occurred:\n\t* unsupported operation\n\n"] });
    const wrongType = await fx.app.inject({
      method: "PATCH",
      url: "/v1/kv1/p",
      headers: { "content-type": "application/json" },
      payload: "{}",
    });
    expect(wrongType.statusCode).toBe(415);
    expect((await call("GET", "/v1/kv1/p")).json().data).toEqual({ a: 1 });
    expect((await fx.app.inject({ method: "HEAD", url: "/v1/kv1/p" })).statusCode).toBe(200);
  });

  it("a write replaces the whole secret; empty bodies, the root and folder paths are 400", async () => {
    await call("PUT", "/v1/kv1/r", { a: 1, b: 2 });
    await call("PUT", "/v1/kv1/r", { c: 3 });
    expect((await call("GET", "/v1/kv1/r")).json().data).toEqual({ c: 3 });
    expect((await call("POST", "/v1/kv1/r", {})).json()).toEqual({ errors: ["missing data fields"] });
    expect((await call("POST", "/v1/kv1/r")).json()).toEqual({ errors: ["missing data fields"] });
    expect((await call("POST", "/v1/kv1/", { a: 1 })).json()).toEqual({ errors: ["missing path"] });
    expect((await call("POST", "/v1/kv1/dir/", { a: 1 })).statusCode).toBe(400);
    expect((await call("POST", "/v1/kv1/r", [1, 2])).statusCode).toBe(400);
    expect((await call("GET", "/v1/kv1/r")).json().data).toEqual({ c: 3 });
  });

  it("delete is 204 and the secret is gone; reading the mount root is 404", async () => {
    await call("POST", "/v1/kv1/d", { a: 1 });
    expect((await call("DELETE", "/v1/kv1/d")).statusCode).toBe(204);
    expect((await call("GET", "/v1/kv1/d")).statusCode).toBe(404);
    expect((await call("DELETE", "/v1/kv1/d")).statusCode).toBe(204);
    expect((await call("GET", "/v1/kv1/")).statusCode).toBe(404);
    expect(await fx.storage.list(mountStoragePrefix((await fx.mounts.get("kv1")) as { uuid: string }))).toEqual([]);
  });

  it("lists with folders (LIST and ?list=true, with or without the trailing slash); an empty folder is 404", async () => {
    for (const path of ["app/a", "app/b/c", "app/b/d", "top"]) await call("POST", `/v1/kv1/${path}`, { v: path });
    const root = await list("/v1/kv1/");
    expect(root.statusCode).toBe(200);
    expect(root.json()).toMatchObject({ data: { keys: ["app/", "top"] }, lease_duration: 0 });
    expect((await list("/v1/kv1")).json().data).toEqual({ keys: ["app/", "top"] });
    expect((await list("/v1/kv1/app")).json().data).toEqual({ keys: ["a", "b/"] });
    expect((await list("/v1/kv1/app/b/")).json().data).toEqual({ keys: ["c", "d"] });
    const empty = await list("/v1/kv1/none/");
    expect(empty.statusCode).toBe(404);
    expect(empty.json()).toEqual({ errors: [] });
  });
});

describe("authorisation on the plain path", () => {
  it("describes and checks Vault's operations: create then update by existence, read, list on the folder, delete", async () => {
    await call("POST", "/v1/kv1/app/k", { a: 1 });
    expect(last()).toEqual({ operation: "create", path: "kv1/app/k" });
    await call("PUT", "/v1/kv1/app/k", { a: 2 });
    expect(last()).toEqual({ operation: "update", path: "kv1/app/k" });
    await call("GET", "/v1/kv1/app/k");
    expect(last()).toEqual({ operation: "read", path: "kv1/app/k" });
    await list("/v1/kv1/app");
    expect(last()).toEqual({ operation: "list", path: "kv1/app/" });
    await call("DELETE", "/v1/kv1/app/k");
    expect(last()).toEqual({ operation: "delete", path: "kv1/app/k" });
    // The capability checked is always on the plain path, never on data/ or metadata/.
    expect(fx.ctx.checked.every((check) => check.path.startsWith("kv1/app/"))).toBe(true);
    expect(fx.ctx.checked).toContainEqual({ path: "kv1/app/", capability: "list" });
  });

  it("a token with create only may create a secret but not overwrite it; update only may not create", async () => {
    fx.ctx.grant((path) => (path.startsWith("kv1/c/") ? ["create", "read"] : []));
    expect((await call("POST", "/v1/kv1/c/one", { v: 1 })).statusCode).toBe(204);
    expect((await call("POST", "/v1/kv1/c/one", { v: 2 })).statusCode).toBe(403);
    expect((await call("GET", "/v1/kv1/c/one")).json().data).toEqual({ v: 1 });
    fx.ctx.grant((path) => (path.startsWith("kv1/c/") ? ["update", "read"] : []));
    expect((await call("POST", "/v1/kv1/c/two", { v: 1 })).statusCode).toBe(403);
    expect((await call("POST", "/v1/kv1/c/one", { v: 3 })).statusCode).toBe(204);
    expect((await call("GET", "/v1/kv1/c/one")).json().data).toEqual({ v: 3 });
    expect((await call("GET", "/v1/kv1/c/two")).statusCode).toBe(404);
  });

  it("a write authorised as a create is refused (409) if the secret was created between the check and the write", async () => {
    fx.ctx.grant((path) => (path === "kv1/race" ? ["create", "read"] : []));
    const original = fx.ctx.authorizer.allowOperation.bind(fx.ctx.authorizer);
    let raced = false;
    fx.ctx.authorizer.allowOperation = async (caller, check, capabilityCheckOnly) => {
      if (!raced && check.operation === "create" && capabilityCheckOnly && fx.ctx.checked.some((c) => c.capability === "create")) {
        raced = true;
        fx.ctx.grant(() => ALL_CAPABILITIES);
        expect((await call("POST", "/v1/kv1/race", { v: "first" })).statusCode).toBe(204);
        fx.ctx.grant((path) => (path === "kv1/race" ? ["create", "read"] : []));
      }
      return original(caller, check, capabilityCheckOnly);
    };
    const second = await call("POST", "/v1/kv1/race", { v: "second" });
    fx.ctx.authorizer.allowOperation = original;
    expect(raced).toBe(true);
    expect(second.statusCode, second.body).toBe(409);
    expect((await call("GET", "/v1/kv1/race")).json().data).toEqual({ v: "first" });
  });

  it("a grant on kv1/app/* reads there and nowhere else; list needs list on the folder path", async () => {
    await call("POST", "/v1/kv1/app/db", { p: 1 });
    await call("POST", "/v1/kv1/other/db", { p: 2 });
    const policy = (path: string): Capability[] => (path.startsWith("kv1/app/") ? ["read"] : []);
    fx.ctx.grant(policy);
    expect((await call("GET", "/v1/kv1/app/db")).statusCode).toBe(200);
    expect((await call("GET", "/v1/kv1/other/db")).statusCode).toBe(403);
    expect((await call("POST", "/v1/kv1/app/db", { p: 3 })).statusCode).toBe(403);
    expect((await call("DELETE", "/v1/kv1/app/db")).statusCode).toBe(403);
    expect((await list("/v1/kv1/app/")).statusCode).toBe(403);
    fx.ctx.grant((path) => (path === "kv1/app/" ? ["list"] : policy(path)));
    expect((await list("/v1/kv1/app")).json().data).toEqual({ keys: ["db"] });
    expect((await list("/v1/kv1/")).statusCode).toBe(403);
  });
});

describe("the mount API", () => {
  it("sys/mounts, sys/mounts/<path>, its tune view and the CLI's preflight show type kv, version 1", async () => {
    const listed = (await call("GET", "/v1/sys/mounts")).json();
    expect(listed.data["kv1/"]).toMatchObject({ type: "kv", options: { version: "1" } });
    expect(listed["kv1/"]).toEqual(listed.data["kv1/"]);
    expect(listed.data["secret/"].options).toEqual({ version: "2" });
    expect((await call("GET", "/v1/sys/mounts/kv1")).json().data).toMatchObject({ type: "kv", options: { version: "1" } });
    expect((await call("GET", "/v1/sys/mounts/kv1/tune")).json().data).toEqual({
      default_lease_ttl: 2764800,
      description: "",
      force_no_cache: false,
      max_lease_ttl: 2764800,
      options: { version: "1" },
    });
    expect((await call("GET", "/v1/sys/internal/ui/mounts/kv1/some/secret")).json().data).toMatchObject({
      path: "kv1/",
      type: "kv",
      options: { version: "1" },
    });
  });

  it("type kv without options mounts version 1, as in Vault; kv-v1 too", async () => {
    expect((await call("POST", "/v1/sys/mounts/plain", { type: "kv" })).statusCode).toBe(204);
    expect((await call("POST", "/v1/sys/mounts/alias", { type: "kv-v1" })).statusCode).toBe(204);
    const data = (await call("GET", "/v1/sys/mounts")).json().data;
    expect(data["plain/"].options).toEqual({ version: "1" });
    expect(data["alias/"].options).toEqual({ version: "1" });
    expect((await call("POST", "/v1/plain/k", { a: 1 })).statusCode).toBe(204);
  });

  it("an upgrade to version 2 by tune is refused (400) and the mount keeps serving version 1", async () => {
    await call("POST", "/v1/kv1/keep", { a: 1 });
    const upgrade = await call("POST", "/v1/sys/mounts/kv1/tune", { options: { version: "2" } });
    expect(upgrade.statusCode).toBe(400);
    expect(upgrade.json().errors[0]).toMatch(/^cannot upgrade mount from version 1 to version 2/);
    expect((await call("GET", "/v1/sys/mounts/kv1/tune")).json().data.options).toEqual({ version: "1" });
    expect((await call("GET", "/v1/kv1/keep")).json().data).toEqual({ a: 1 });
    expect((await call("POST", "/v1/sys/mounts/kv1/tune", { options: { version: "1" }, description: "v1" })).statusCode).toBe(204);
    expect((await call("GET", "/v1/sys/mounts/kv1")).json().data.description).toBe("v1");
  });

  it("unmounting purges the v1 secrets; a new mount at the path is empty", async () => {
    for (const path of ["a", "b/c", "data/d"]) await call("POST", `/v1/kv1/${path}`, { v: 1 });
    const mount = await fx.mounts.get("kv1");
    expect(mount).not.toBeNull();
    const prefix = mountStoragePrefix(mount as { uuid: string });
    expect(await fx.storage.list(prefix)).toEqual(["a", "b/", "data/"]);
    expect((await call("DELETE", "/v1/sys/mounts/kv1")).statusCode).toBe(204);
    expect(await fx.storage.list(prefix)).toEqual([]);
    const gone = await call("GET", "/v1/kv1/a");
    expect(gone.statusCode).toBe(404);
    expect(gone.json().errors[0]).toContain("no handler for route");
    expect((await call("POST", "/v1/sys/mounts/kv1", { type: "kv" })).statusCode).toBe(204);
    expect((await call("GET", "/v1/kv1/a")).statusCode).toBe(404);
    expect((await list("/v1/kv1/")).statusCode).toBe(404);
  });
});
