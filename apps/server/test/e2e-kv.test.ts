/**
 * End to end: every KV version 2 endpoint of Vault's API (data, PATCH merge patch, soft delete,
 * delete/undelete/destroy of versions, metadata read/list/write/patch/delete-all, subkeys,
 * config, check-and-set including concurrent writers) over real HTTP on a real server, over a
 * SQLite file and a PostgreSQL database. Shapes are Vault's (developer.hashicorp.com
 * /vault/api-docs/secret/kv/kv-v2).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type JsonBody, startTestServer, type TestServer } from "@egide/test-server";

const ENVELOPE_KEYS = ["auth", "data", "lease_duration", "lease_id", "renewable", "request_id", "warnings", "wrap_info"];
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const CAS_MISMATCH = "check-and-set parameter did not match the current version";
const CAS_REQUIRED = "check-and-set parameter required for this call";
const MERGE_PATCH = { "content-type": "application/merge-patch+json" };

/** Checks Vault's response envelope around `data`. */
function expectEnvelope(body: JsonBody): void {
  expect(Object.keys(body).sort()).toEqual(ENVELOPE_KEYS);
  expect(body).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, wrap_info: null, auth: null });
  expect(body.request_id).toEqual(expect.any(String));
  expect(body.request_id).not.toBe("");
}

describe.each([["sqlite"], ["postgresql"]] as const)("KV v2 over HTTP on %s", (storage) => {
  let server: TestServer;
  let kv: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => ReturnType<typeof call>;

  beforeAll(async () => {
    server = await startTestServer({ storage });
    kv = (method, path, body, headers) =>
      call(server.url, method, `/v1/${path}`, {
        token: server.rootToken,
        ...(body !== undefined ? { body } : {}),
        ...(headers ? { headers } : {}),
      });
  }, 30_000);

  afterAll(async () => {
    await server?.close();
  });

  describe("data", () => {
    it("POST and PUT write versions; the answer is the envelope with the version's metadata", async () => {
      const first = await kv("POST", "secret/data/data/a", { data: { user: "u", nested: { n: 1, list: [1, "two", null] } } });
      expect(first.status).toBe(200);
      expectEnvelope(first.body);
      expect(first.body.warnings).toBeNull();
      expect(first.body.data).toEqual({
        created_time: expect.stringMatching(TIMESTAMP),
        custom_metadata: null,
        deletion_time: "",
        destroyed: false,
        version: 1,
      });

      const second = await kv("PUT", "secret/data/data/a", { data: { user: "v" } });
      expect(second.status).toBe(200);
      expect(second.body.data.version).toBe(2);
      expect(Date.parse(second.body.data.created_time)).toBeGreaterThanOrEqual(Date.parse(first.body.data.created_time));
    });

    it("GET reads the latest version; ?version= reads an older one; an absent key or version is 404 {errors: []}", async () => {
      const latest = await kv("GET", "secret/data/data/a");
      expect(latest.status).toBe(200);
      expectEnvelope(latest.body);
      expect(latest.body.data).toEqual({
        data: { user: "v" },
        metadata: {
          created_time: expect.stringMatching(TIMESTAMP),
          custom_metadata: null,
          deletion_time: "",
          destroyed: false,
          version: 2,
        },
      });
      const v1 = await kv("GET", "secret/data/data/a?version=1");
      expect(v1.status).toBe(200);
      expect(v1.body.data.data).toEqual({ user: "u", nested: { n: 1, list: [1, "two", null] } });
      expect(v1.body.data.metadata.version).toBe(1);
      expect((await kv("GET", "secret/data/data/a?version=0")).body.data.metadata.version).toBe(2);

      for (const path of ["secret/data/data/none", "secret/data/data/a?version=3"]) {
        const missing = await kv("GET", path);
        expect(missing.status, path).toBe(404);
        expect(missing.body, path).toEqual({ errors: [] });
      }
      expect((await kv("GET", "secret/data/data/a?version=abc")).status).toBe(400);
    });

    it("a write without data is 400; data that is not a map is 400", async () => {
      expect((await kv("POST", "secret/data/data/b", { options: {} })).body).toEqual({ errors: ["no data provided"] });
      expect((await kv("POST", "secret/data/data/b", { data: "text" })).status).toBe(400);
      expect((await kv("POST", "secret/data/data/b", { data: [1, 2] })).status).toBe(400);
      expect((await kv("GET", "secret/data/data/b")).status).toBe(404);
    });
  });

  describe("PATCH (JSON merge patch)", () => {
    it("merges into the current version as a new version; null removes a key; nested maps merge", async () => {
      await kv("POST", "secret/data/patch/a", { data: { keep: "k", drop: "d", nested: { x: 1, y: 2 }, list: [1, 2] } });
      const patched = await kv(
        "PATCH",
        "secret/data/patch/a",
        { data: { drop: null, nested: { y: null, z: 3 }, list: [3], added: true } },
        MERGE_PATCH,
      );
      expect(patched.status).toBe(200);
      expectEnvelope(patched.body);
      expect(patched.body.data).toMatchObject({ version: 2, destroyed: false, deletion_time: "" });
      const read = await kv("GET", "secret/data/patch/a");
      expect(read.body.data.data).toEqual({ keep: "k", nested: { x: 1, z: 3 }, list: [3], added: true });
      expect((await kv("GET", "secret/data/patch/a?version=1")).body.data.data).toEqual({
        keep: "k",
        drop: "d",
        nested: { x: 1, y: 2 },
        list: [1, 2],
      });
    });

    it("honours cas; a charset parameter on the content type is accepted", async () => {
      const mismatch = await kv("PATCH", "secret/data/patch/a", { data: { a: 1 }, options: { cas: 1 } }, MERGE_PATCH);
      expect(mismatch.status).toBe(400);
      expect(mismatch.body).toEqual({ errors: [CAS_MISMATCH] });
      const ok = await kv(
        "PATCH",
        "secret/data/patch/a",
        { data: { a: 1 }, options: { cas: 2 } },
        { "content-type": "application/merge-patch+json; charset=utf-8" },
      );
      expect(ok.status).toBe(200);
      expect(ok.body.data.version).toBe(3);
    });

    it("needs the merge-patch content type (415); a missing key is 404; a deleted version is 404 with its metadata", async () => {
      const wrongType = await kv("PATCH", "secret/data/patch/a", { data: { a: 2 } });
      expect(wrongType.status).toBe(415);
      expect(wrongType.body.errors[0]).toContain("application/merge-patch+json");

      const missing = await kv("PATCH", "secret/data/patch/none", { data: { a: 1 } }, MERGE_PATCH);
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ errors: [] });

      await kv("POST", "secret/data/patch/deleted", { data: { a: 1 } });
      await kv("DELETE", "secret/data/patch/deleted");
      const deleted = await kv("PATCH", "secret/data/patch/deleted", { data: { a: 2 } }, MERGE_PATCH);
      expect(deleted.status).toBe(404);
      // Vault's patch handler answers the version metadata itself (not {data, metadata}).
      expect(deleted.body.data).toEqual({
        version: 1,
        destroyed: false,
        deletion_time: expect.stringMatching(TIMESTAMP),
        created_time: expect.stringMatching(TIMESTAMP),
        custom_metadata: null,
      });
      // Nothing was written.
      expect((await kv("GET", "secret/metadata/patch/deleted")).body.data.current_version).toBe(1);
    });
  });

  describe("soft delete, delete, undelete, destroy", () => {
    it("DELETE data soft-deletes the latest version: 204, then 404 with the metadata; older versions stay readable", async () => {
      await kv("POST", "secret/data/del/a", { data: { v: 1 } });
      await kv("POST", "secret/data/del/a", { data: { v: 2 } });
      const remove = await kv("DELETE", "secret/data/del/a");
      expect(remove.status).toBe(204);
      expect(remove.body).toBeNull();
      const read = await kv("GET", "secret/data/del/a");
      expect(read.status).toBe(404);
      expectEnvelope(read.body);
      expect(read.body.data.data).toBeNull();
      expect(read.body.data.metadata).toMatchObject({ version: 2, destroyed: false, deletion_time: expect.stringMatching(TIMESTAMP) });
      expect((await kv("GET", "secret/data/del/a?version=1")).body.data.data).toEqual({ v: 1 });
      // Deleting what is already deleted, or what never existed, is still 204.
      expect((await kv("DELETE", "secret/data/del/a")).status).toBe(204);
      expect((await kv("DELETE", "secret/data/del/none")).status).toBe(204);
    });

    it("POST delete/ soft-deletes versions, undelete/ restores them, destroy/ removes their data for good", async () => {
      await kv("POST", "secret/data/del/b", { data: { v: 1 } });
      await kv("POST", "secret/data/del/b", { data: { v: 2 } });
      await kv("POST", "secret/data/del/b", { data: { v: 3 } });

      expect((await kv("POST", "secret/delete/del/b", { versions: [1, 2] })).status).toBe(204);
      expect((await kv("GET", "secret/data/del/b?version=1")).status).toBe(404);
      expect((await kv("GET", "secret/data/del/b?version=2")).status).toBe(404);
      expect((await kv("GET", "secret/data/del/b")).body.data.data).toEqual({ v: 3 });

      expect((await kv("POST", "secret/undelete/del/b", { versions: [1] })).status).toBe(204);
      const undeleted = await kv("GET", "secret/data/del/b?version=1");
      expect(undeleted.status).toBe(200);
      expect(undeleted.body.data).toMatchObject({ data: { v: 1 }, metadata: { deletion_time: "", destroyed: false } });

      expect((await kv("PUT", "secret/destroy/del/b", { versions: [2, 3] })).status).toBe(204);
      for (const version of [2, 3]) {
        const destroyed = await kv("GET", `secret/data/del/b?version=${version}`);
        expect(destroyed.status).toBe(404);
        expect(destroyed.body.data.data).toBeNull();
        expect(destroyed.body.data.metadata).toMatchObject({ version, destroyed: true });
      }
      // A destroyed version cannot be undeleted.
      await kv("POST", "secret/undelete/del/b", { versions: [2] });
      expect((await kv("GET", "secret/data/del/b?version=2")).status).toBe(404);

      const metadata = await kv("GET", "secret/metadata/del/b");
      expect(metadata.body.data.versions).toEqual({
        "1": { created_time: expect.stringMatching(TIMESTAMP), deletion_time: "", destroyed: false },
        "2": { created_time: expect.stringMatching(TIMESTAMP), deletion_time: expect.stringMatching(TIMESTAMP), destroyed: true },
        "3": { created_time: expect.stringMatching(TIMESTAMP), deletion_time: "", destroyed: true },
      });
    });

    it("delete/undelete/destroy without versions is 400", async () => {
      for (const kind of ["delete", "undelete", "destroy"]) {
        const response = await kv("POST", `secret/${kind}/del/b`, {});
        expect(response.status, kind).toBe(400);
        expect(response.body.errors[0].toLowerCase(), kind).toContain("no version number provided");
      }
    });
  });

  describe("metadata", () => {
    it("GET metadata answers Vault's fields; an absent key is 404", async () => {
      await kv("POST", "secret/data/meta/a", { data: { v: 1 } });
      await kv("POST", "secret/data/meta/a", { data: { v: 2 } });
      const read = await kv("GET", "secret/metadata/meta/a");
      expect(read.status).toBe(200);
      expectEnvelope(read.body);
      expect(read.body.data).toEqual({
        cas_required: false,
        created_time: expect.stringMatching(TIMESTAMP),
        current_version: 2,
        custom_metadata: null,
        delete_version_after: "0s",
        max_versions: 0,
        oldest_version: 0,
        updated_time: expect.stringMatching(TIMESTAMP),
        versions: {
          "1": { created_time: expect.stringMatching(TIMESTAMP), deletion_time: "", destroyed: false },
          "2": { created_time: expect.stringMatching(TIMESTAMP), deletion_time: "", destroyed: false },
        },
      });
      expect(read.body.data.updated_time).toBe(read.body.data.versions["2"].created_time);
      const missing = await kv("GET", "secret/metadata/meta/none");
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ errors: [] });
    });

    it("POST metadata sets max_versions (older versions are trimmed), cas_required and custom_metadata", async () => {
      const write = await kv("POST", "secret/metadata/meta/b", {
        max_versions: 2,
        cas_required: true,
        custom_metadata: { owner: "ops", tier: "1" },
      });
      expect(write.status).toBe(204);
      const created = await kv("GET", "secret/metadata/meta/b");
      expect(created.body.data).toMatchObject({
        max_versions: 2,
        cas_required: true,
        custom_metadata: { owner: "ops", tier: "1" },
        current_version: 0,
        versions: {},
      });

      const noCas = await kv("POST", "secret/data/meta/b", { data: { v: 1 } });
      expect(noCas.status).toBe(400);
      expect(noCas.body).toEqual({ errors: [CAS_REQUIRED] });
      for (const cas of [0, 1, 2]) {
        const write = await kv("POST", "secret/data/meta/b", { data: { v: cas + 1 }, options: { cas } });
        expect(write.status, `cas ${cas}`).toBe(200);
        expect(write.body.data).toMatchObject({ version: cas + 1, custom_metadata: { owner: "ops", tier: "1" } });
      }
      const meta = (await kv("GET", "secret/metadata/meta/b")).body.data;
      expect(meta).toMatchObject({ current_version: 3, oldest_version: 2 });
      expect(Object.keys(meta.versions).sort()).toEqual(["2", "3"]);
      expect((await kv("GET", "secret/data/meta/b?version=1")).status).toBe(404);
      expect((await kv("GET", "secret/data/meta/b")).body.data.metadata.custom_metadata).toEqual({ owner: "ops", tier: "1" });

      // custom_metadata is replaced whole by a POST.
      expect((await kv("POST", "secret/metadata/meta/b", { custom_metadata: { team: "t" } })).status).toBe(204);
      expect((await kv("GET", "secret/metadata/meta/b")).body.data.custom_metadata).toEqual({ team: "t" });
    });

    it("PATCH metadata changes only the fields given and merges custom_metadata", async () => {
      await kv("POST", "secret/metadata/meta/c", { max_versions: 5, custom_metadata: { a: "1", b: "2" } });
      const patch = await kv("PATCH", "secret/metadata/meta/c", { cas_required: true, custom_metadata: { a: null, c: "3" } }, MERGE_PATCH);
      expect(patch.status).toBe(204);
      const meta = (await kv("GET", "secret/metadata/meta/c")).body.data;
      expect(meta).toMatchObject({ max_versions: 5, cas_required: true, custom_metadata: { b: "2", c: "3" } });
      expect((await kv("PATCH", "secret/metadata/meta/none", { max_versions: 1 }, MERGE_PATCH)).status).toBe(404);
      expect((await kv("PATCH", "secret/metadata/meta/c", { max_versions: 1 })).status).toBe(415);
    });

    it("invalid metadata is 400 and changes nothing", async () => {
      const bad = await kv("POST", "secret/metadata/meta/c", { max_versions: -1 });
      expect(bad.status).toBe(400);
      const tooMany = await kv("POST", "secret/metadata/meta/c", {
        custom_metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])),
      });
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.errors[0]).toContain("custom_metadata validation failed");
      expect((await kv("GET", "secret/metadata/meta/c")).body.data).toMatchObject({ max_versions: 5, custom_metadata: { b: "2", c: "3" } });
    });

    it("LIST and GET ?list=true list keys and folders; an empty folder is 404", async () => {
      for (const key of ["list/a", "list/b", "list/sub/c", "list/sub/deeper/d"])
        await kv("POST", `secret/data/${key}`, { data: { k: key } });
      for (const [method, path] of [
        ["LIST", "secret/metadata/list"],
        ["LIST", "secret/metadata/list/"],
        ["GET", "secret/metadata/list?list=true"],
        ["GET", "secret/metadata/list/?list=true"],
      ] as const) {
        const response = await kv(method, path);
        expect(response.status, `${method} ${path}`).toBe(200);
        expectEnvelope(response.body);
        expect(response.body.data, `${method} ${path}`).toEqual({ keys: ["a", "b", "sub/"] });
      }
      expect((await kv("LIST", "secret/metadata/list/sub")).body.data).toEqual({ keys: ["c", "deeper/"] });
      const empty = await kv("LIST", "secret/metadata/list/none");
      expect(empty.status).toBe(404);
      expect(empty.body).toEqual({ errors: [] });
      // LIST on data/ is not an endpoint of the engine.
      expect((await kv("LIST", "secret/data/list")).status).toBeGreaterThanOrEqual(400);
      expect((await kv("LIST", "secret/data/list")).status).toBeLessThan(500);
    });

    it("DELETE metadata removes every version and the metadata; the key leaves the listing", async () => {
      await kv("POST", "secret/data/list/gone", { data: { v: 1 } });
      await kv("POST", "secret/data/list/gone", { data: { v: 2 } });
      expect((await kv("LIST", "secret/metadata/list")).body.data.keys).toContain("gone");
      const remove = await kv("DELETE", "secret/metadata/list/gone");
      expect(remove.status).toBe(204);
      expect((await kv("GET", "secret/metadata/list/gone")).status).toBe(404);
      for (const path of ["secret/data/list/gone", "secret/data/list/gone?version=1"]) {
        const read = await kv("GET", path);
        expect(read.status, path).toBe(404);
        expect(read.body, path).toEqual({ errors: [] });
      }
      expect((await kv("LIST", "secret/metadata/list")).body.data.keys).not.toContain("gone");
      // A new write starts again at version 1.
      expect((await kv("POST", "secret/data/list/gone", { data: { v: 3 } })).body.data.version).toBe(1);
    });
  });

  it("subkeys answers the structure with null leaves", async () => {
    await kv("POST", "secret/data/sub/a", { data: { a: 1, b: { c: 2, d: { e: 3 } }, f: {} } });
    const response = await kv("GET", "secret/subkeys/sub/a");
    expect(response.status).toBe(200);
    expectEnvelope(response.body);
    expect(response.body.data.subkeys).toEqual({ a: null, b: { c: null, d: { e: null } }, f: null });
    expect(response.body.data.metadata).toMatchObject({ version: 1 });
    expect((await kv("GET", "secret/subkeys/sub/a?depth=1")).body.data.subkeys).toEqual({ a: null, b: null, f: null });
    expect((await kv("GET", "secret/subkeys/sub/none")).status).toBe(404);
  });

  describe("config (on a mount of its own)", () => {
    beforeAll(async () => {
      const mount = await kv("POST", "sys/mounts/kvconf", { type: "kv", options: { version: "2" } });
      expect(mount.status).toBe(204);
    });

    it("GET config answers the defaults; POST sets max_versions, cas_required, delete_version_after", async () => {
      const defaults = await kv("GET", "kvconf/config");
      expect(defaults.status).toBe(200);
      expectEnvelope(defaults.body);
      expect(defaults.body.data).toEqual({ max_versions: 0, cas_required: false, delete_version_after: "0s" });

      expect((await kv("POST", "kvconf/config", { max_versions: 3, cas_required: true, delete_version_after: "3h25m19s" })).status).toBe(
        204,
      );
      expect((await kv("GET", "kvconf/config")).body.data).toEqual({
        max_versions: 3,
        cas_required: true,
        delete_version_after: "3h25m19s",
      });

      // The mount's cas_required applies to every key.
      const noCas = await kv("POST", "kvconf/data/k", { data: { v: 1 } });
      expect(noCas.status).toBe(400);
      expect(noCas.body).toEqual({ errors: [CAS_REQUIRED] });
      const write = await kv("POST", "kvconf/data/k", { data: { v: 1 }, options: { cas: 0 } });
      expect(write.status).toBe(200);
      // delete_version_after schedules the version's deletion.
      expect(write.body.data.deletion_time).toMatch(TIMESTAMP);
      expect(Date.parse(write.body.data.deletion_time) - Date.parse(write.body.data.created_time)).toBe((3 * 3600 + 25 * 60 + 19) * 1000);

      // A key cannot opt out of the mount's cas_required: 200 with Vault's warning.
      const warned = await kv("POST", "kvconf/metadata/k", { cas_required: false });
      expect(warned.status).toBe(200);
      expect(warned.body.warnings).toEqual(['"cas_required" set to false, but is mandated by backend config. This value will be ignored.']);

      expect((await kv("POST", "kvconf/config", { max_versions: 0, cas_required: false, delete_version_after: "0s" })).status).toBe(204);
      expect((await kv("GET", "kvconf/config")).body.data).toEqual({ max_versions: 0, cas_required: false, delete_version_after: "0s" });
      expect((await kv("GET", "secret/config")).body.data).toEqual({ max_versions: 0, cas_required: false, delete_version_after: "0s" });
    });

    it("the mount's max_versions trims versions", async () => {
      expect((await kv("POST", "kvconf/config", { max_versions: 2 })).status).toBe(204);
      for (let i = 1; i <= 4; i++) await kv("POST", "kvconf/data/trim", { data: { v: i } });
      const meta = (await kv("GET", "kvconf/metadata/trim")).body.data;
      expect(meta).toMatchObject({ current_version: 4, oldest_version: 3 });
      expect(Object.keys(meta.versions).sort()).toEqual(["3", "4"]);
      expect((await kv("GET", "kvconf/data/trim?version=2")).status).toBe(404);
    });
  });

  describe("check-and-set", () => {
    it("cas 0 creates only; a mismatch is 400 with Vault's message and writes nothing", async () => {
      expect((await kv("POST", "secret/data/cas/a", { data: { v: 1 }, options: { cas: 0 } })).status).toBe(200);
      for (const cas of [0, 2, 7, "1x"]) {
        const response = await kv("POST", "secret/data/cas/a", { data: { v: 2 }, options: { cas } });
        if (cas === "1x") {
          expect(response.status).toBe(400);
          continue;
        }
        expect(response.status, `cas ${cas}`).toBe(400);
        expect(response.body, `cas ${cas}`).toEqual({ errors: [CAS_MISMATCH] });
      }
      expect((await kv("GET", "secret/data/cas/a")).body.data).toMatchObject({ data: { v: 1 }, metadata: { version: 1 } });
      expect((await kv("POST", "secret/data/cas/a", { data: { v: 2 }, options: { cas: "1" } })).status).toBe(200);
    });

    it("20 concurrent writers with the same cas: exactly one 200, nineteen check-and-set 400s, for 3 versions in a row", async () => {
      const WRITERS = 20;
      for (let cas = 0; cas < 3; cas++) {
        const responses = await Promise.all(
          Array.from({ length: WRITERS }, (_, writer) =>
            kv("POST", "secret/data/cas/race", { data: { writer, round: cas }, options: { cas } }),
          ),
        );
        const statuses = responses.map((response) => response.status);
        const winners = responses.flatMap((response, writer) => (response.status === 200 ? [writer] : []));
        expect(winners, `round cas=${cas}: statuses ${JSON.stringify(statuses)}`).toHaveLength(1);
        expect(
          statuses.filter((status) => status === 400),
          `round cas=${cas}: statuses ${JSON.stringify(statuses)}`,
        ).toHaveLength(WRITERS - 1);
        for (const response of responses) {
          if (response.status === 200) {
            expectEnvelope(response.body);
            expect(response.body.data.version).toBe(cas + 1);
          } else {
            expect(response.body).toEqual({ errors: [CAS_MISMATCH] });
          }
        }
        const read = await kv("GET", "secret/data/cas/race");
        expect(read.body.data).toMatchObject({ data: { writer: winners[0], round: cas }, metadata: { version: cas + 1 } });
      }
      const meta = (await kv("GET", "secret/metadata/cas/race")).body.data;
      expect(meta.current_version).toBe(3);
      expect(Object.keys(meta.versions).sort()).toEqual(["1", "2", "3"]);
    }, 30_000);

    it("20 concurrent writers without cas each get a version of their own (no lost write)", async () => {
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, writer) => kv("POST", "secret/data/cas/free", { data: { writer } })),
      );
      const statuses = responses.map((response) => response.status);
      expect(statuses, JSON.stringify(responses.filter((r) => r.status !== 200).map((r) => [r.status, r.body]))).toEqual(
        Array(20).fill(200),
      );
      const versions = responses.map((response) => response.body.data.version as number).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect((await kv("GET", "secret/metadata/cas/free")).body.data.current_version).toBe(20);
    }, 30_000);
  });
});
