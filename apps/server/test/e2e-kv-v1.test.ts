/**
 * End to end: the KV version 1 secrets engine over real HTTP on a real server, over a SQLite
 * file and a PostgreSQL database. The requests and answers of Vault's KV v1 API documentation
 * (developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1: read, list, create/update, delete),
 * mounting with Vault's spellings (`sys/mounts`), ACL policies on the plain v1 paths, the purge
 * of a v1 mount's data on unmount, and the refused upgrade to version 2.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type JsonBody, startTestServer, type TestServer } from "@egide/test-server";

const ENVELOPE_KEYS = ["auth", "data", "lease_duration", "lease_id", "renewable", "request_id", "warnings", "wrap_info"];

describe.each([["sqlite"], ["postgresql"]] as const)("KV v1 over HTTP on %s", (storage) => {
  let server: TestServer;
  let kv: (method: string, path: string, body?: unknown, token?: string) => ReturnType<typeof call>;

  beforeAll(async () => {
    server = await startTestServer({ storage, label: "kv-v1" });
    kv = (method, path, body, token) =>
      call(server.url, method, `/v1/${path}`, { token: token ?? server.rootToken, ...(body !== undefined ? { body } : {}) });
    const mounted = await kv("POST", "sys/mounts/kv1", { type: "kv", options: { version: "1" }, description: "v1 secrets" });
    expect(mounted.status, JSON.stringify(mounted.body)).toBe(204);
  }, 30_000);

  afterAll(async () => {
    await server?.close();
  });

  async function tokenWith(name: string, policy: string): Promise<string> {
    expect((await kv("PUT", `sys/policies/acl/${name}`, { policy })).status).toBe(204);
    const created = await kv("POST", "auth/token/create", { policies: [name] });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    return created.body.auth.client_token as string;
  }

  async function storedKeys(mountPath: string): Promise<string[]> {
    const mount = (await kv("GET", `sys/mounts/${mountPath}`)).body.data;
    return server.server.context.storage.list(`logical/${mount.uuid as string}/`);
  }

  describe("Vault's KV v1 API", () => {
    it("create/update secret: POST with the key/value pairs as the body answers 204 and no body", async () => {
      const write = await kv("POST", "kv1/my-secret", { foo: "bar", ttl: "1h" });
      expect(write.status).toBe(204);
      expect(write.body).toBeNull();
      expect((await kv("PUT", "kv1/other", { zip: "zap" })).status).toBe(204);
    });

    it("read secret: the documented answer, with the ttl field as lease_duration", async () => {
      const read = await kv("GET", "kv1/my-secret");
      expect(read.status).toBe(200);
      const body: JsonBody = read.body;
      expect(Object.keys(body).sort()).toEqual(ENVELOPE_KEYS);
      expect(body).toEqual({
        auth: null,
        data: { foo: "bar", ttl: "1h" },
        lease_duration: 3600,
        lease_id: "",
        renewable: false,
        request_id: expect.any(String),
        warnings: null,
        wrap_info: null,
      });
      expect(body.request_id).not.toBe("");
    });

    it("read secret without a ttl: lease_duration is Vault's default lease TTL, 2764800 (32 days)", async () => {
      const read = await kv("GET", "kv1/other");
      expect(read.body).toMatchObject({ data: { zip: "zap" }, lease_duration: 2764800, lease_id: "", renewable: false });
      expect(typeof read.body.lease_duration).toBe("number");
    });

    it("create/update replaces the whole secret, keeping JSON types", async () => {
      const value = { s: "x", n: 1.5, b: false, nil: null, list: [1, "two"], map: { deep: { er: true } } };
      expect((await kv("PUT", "kv1/other", value)).status).toBe(204);
      expect((await kv("GET", "kv1/other")).body.data).toEqual(value);
    });

    it("an absent secret is 404 {errors: []}", async () => {
      const missing = await kv("GET", "kv1/absent");
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ errors: [] });
    });

    it("list secrets: LIST and GET ?list=true answer {data: {keys}} with folders suffixed by /", async () => {
      for (const path of ["app/db", "app/web/cert", "app/web/key", "team/x"]) {
        expect((await kv("POST", `kv1/${path}`, { v: path })).status).toBe(204);
      }
      const root = await kv("LIST", "kv1/");
      expect(root.status).toBe(200);
      expect(Object.keys(root.body).sort()).toEqual(ENVELOPE_KEYS);
      expect(root.body).toMatchObject({ data: { keys: ["app/", "my-secret", "other", "team/"] }, lease_duration: 0, lease_id: "" });
      expect((await kv("GET", "kv1/app?list=true")).body.data).toEqual({ keys: ["db", "web/"] });
      expect((await kv("LIST", "kv1/app/web")).body.data).toEqual({ keys: ["cert", "key"] });
      const empty = await kv("LIST", "kv1/nothing/");
      expect(empty.status).toBe(404);
      expect(empty.body).toEqual({ errors: [] });
    });

    it("delete secret: 204, then the secret reads 404 and leaves its folder's listing", async () => {
      expect((await kv("DELETE", "kv1/team/x")).status).toBe(204);
      expect((await kv("GET", "kv1/team/x")).status).toBe(404);
      expect((await kv("LIST", "kv1/team/")).status).toBe(404);
      expect((await kv("LIST", "kv1/")).body.data.keys).toEqual(["app/", "my-secret", "other"]);
    });

    it("an empty body is 400 'missing data fields'; PATCH is 405", async () => {
      expect((await kv("POST", "kv1/empty", {})).body).toEqual({ errors: ["missing data fields"] });
      const patch = await call(server.url, "PATCH", "/v1/kv1/other", {
        token: server.rootToken,
        body: { s: "y" },
        headers: { "content-type": "application/merge-patch+json" },
      });
      expect(patch.status).toBe(405);
    });

    it("KV v2's sub-paths are secret names: kv1/data/x is the secret data/x", async () => {
      expect((await kv("POST", "kv1/data/x", { data: { a: 1 } })).status).toBe(204);
      expect((await kv("GET", "kv1/data/x")).body.data).toEqual({ data: { a: 1 } });
      expect((await kv("GET", "kv1/metadata/x")).status).toBe(404);
      expect((await kv("LIST", "kv1/metadata/")).status).toBe(404);
      expect((await kv("GET", "kv1/x")).status).toBe(404);
    });
  });

  describe("sys/mounts", () => {
    it("lists the mount as type kv with options {version: 1}; its info and tune view show the version", async () => {
      const mounts = await kv("GET", "sys/mounts");
      expect(mounts.body.data["kv1/"]).toMatchObject({ type: "kv", options: { version: "1" }, description: "v1 secrets" });
      expect(mounts.body.data["secret/"]).toMatchObject({ type: "kv", options: { version: "2" } });
      expect((await kv("GET", "sys/mounts/kv1")).body.data).toMatchObject({ type: "kv", options: { version: "1" } });
      expect((await kv("GET", "sys/mounts/kv1/tune")).body.data).toMatchObject({ options: { version: "1" }, default_lease_ttl: 2764800 });
    });

    it("type kv without options is version 1 (as in Vault), kv-v1 too; kv-v2 is version 2", async () => {
      expect((await kv("POST", "sys/mounts/plain-kv", { type: "kv" })).status).toBe(204);
      expect((await kv("POST", "sys/mounts/alias-v1", { type: "kv-v1" })).status).toBe(204);
      expect((await kv("POST", "sys/mounts/alias-v2", { type: "kv-v2" })).status).toBe(204);
      const data = (await kv("GET", "sys/mounts")).body.data;
      expect(data["plain-kv/"].options).toEqual({ version: "1" });
      expect(data["alias-v1/"].options).toEqual({ version: "1" });
      expect(data["alias-v2/"].options).toEqual({ version: "2" });
      expect((await kv("POST", "plain-kv/k", { a: 1 })).status).toBe(204);
      expect((await kv("POST", "alias-v2/k", { a: 1 })).status).toBe(404);
      expect((await kv("POST", "alias-v2/data/k", { data: { a: 1 } })).status).toBe(200);
      for (const path of ["plain-kv", "alias-v1", "alias-v2"]) expect((await kv("DELETE", `sys/mounts/${path}`)).status).toBe(204);
    });

    it("an upgrade to version 2 through tune is refused, and the secrets still read as version 1", async () => {
      const upgrade = await kv("POST", "sys/mounts/kv1/tune", { options: { version: "2" } });
      expect(upgrade.status).toBe(400);
      expect(upgrade.body.errors[0]).toMatch(/^cannot upgrade mount from version 1 to version 2/);
      expect((await kv("GET", "sys/mounts/kv1/tune")).body.data.options).toEqual({ version: "1" });
      expect((await kv("GET", "kv1/my-secret")).body.data).toEqual({ foo: "bar", ttl: "1h" });
      const downgrade = await kv("POST", "sys/mounts/secret/tune", { options: { version: "1" } });
      expect(downgrade.body).toEqual({ errors: ["cannot downgrade mount from version 2"] });
    });

    it("unmounting purges the mount's v1 secrets from storage; a new mount there is empty", async () => {
      expect((await kv("POST", "sys/mounts/purged", { type: "kv" })).status).toBe(204);
      for (const path of ["a", "b/c", "data/d"]) expect((await kv("POST", `purged/${path}`, { v: 1 })).status).toBe(204);
      const uuid = (await kv("GET", "sys/mounts/purged")).body.data.uuid as string;
      expect(await storedKeys("purged")).toEqual(["a", "b/", "data/"]);
      expect((await kv("DELETE", "sys/mounts/purged")).status).toBe(204);
      expect(await server.server.context.storage.list(`logical/${uuid}/`)).toEqual([]);
      const unmounted = await kv("GET", "purged/a");
      expect(unmounted.status).toBe(404);
      expect(unmounted.body.errors[0]).toContain("no handler for route");
      expect((await kv("POST", "sys/mounts/purged", { type: "kv" })).status).toBe(204);
      expect((await kv("GET", "purged/a")).status).toBe(404);
      expect(await storedKeys("purged")).toEqual([]);
    });
  });

  describe("ACL on v1 paths", () => {
    it("a policy on kv1/app/* reads there and nowhere else; list needs list on the folder path", async () => {
      const reader = await tokenWith("kv1-app-read", `path "kv1/app/*" { capabilities = ["read"] }`);
      expect((await kv("GET", "kv1/app/db", undefined, reader)).body.data).toEqual({ v: "app/db" });
      expect((await kv("GET", "kv1/app/web/cert", undefined, reader)).status).toBe(200);
      for (const path of ["kv1/my-secret", "kv1/data/x", "secret/data/app/db"]) {
        const denied = await kv("GET", path, undefined, reader);
        expect(denied.status, path).toBe(403);
        expect(denied.body, path).toEqual({ errors: ["permission denied"] });
      }
      expect((await kv("POST", "kv1/app/db", { v: "changed" }, reader)).status).toBe(403);
      expect((await kv("DELETE", "kv1/app/db", undefined, reader)).status).toBe(403);
      // `kv1/app/*` matches the folder path `kv1/app/` too, but grants no list.
      expect((await kv("LIST", "kv1/app/", undefined, reader)).status).toBe(403);

      const lister = await tokenWith(
        "kv1-app-list",
        `path "kv1/app/*" { capabilities = ["read"] }\npath "kv1/app/" { capabilities = ["list"] }`,
      );
      expect((await kv("LIST", "kv1/app", undefined, lister)).body.data).toEqual({ keys: ["db", "web/"] });
      expect((await kv("LIST", "kv1/app/web/", undefined, lister)).status).toBe(403);
      expect((await kv("LIST", "kv1/", undefined, lister)).status).toBe(403);
    });

    it("create and update follow the existence of the secret", async () => {
      const creator = await tokenWith("kv1-create", `path "kv1/new/*" { capabilities = ["create", "read"] }`);
      expect((await kv("POST", "kv1/new/one", { v: 1 }, creator)).status).toBe(204);
      expect((await kv("POST", "kv1/new/one", { v: 2 }, creator)).status).toBe(403);
      const updater = await tokenWith("kv1-update", `path "kv1/new/*" { capabilities = ["update", "read"] }`);
      expect((await kv("POST", "kv1/new/two", { v: 1 }, updater)).status).toBe(403);
      expect((await kv("PUT", "kv1/new/one", { v: 3 }, updater)).status).toBe(204);
      expect((await kv("GET", "kv1/new/one", undefined, creator)).body.data).toEqual({ v: 3 });
      expect((await kv("GET", "kv1/new/two")).status).toBe(404);
    });
  });
});
