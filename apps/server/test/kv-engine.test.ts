import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Transaction } from "@egide/storage-core";
import type { SqliteBackend } from "@egide/storage-sqlite";
import { CAS_MISMATCH, CAS_REQUIRED, CAS_REQUIRED_IGNORED, KvV2Engine } from "../src/kv/kv-v2-engine.js";
import { KvNotFoundError, type KvResponse } from "../src/kv/kv-response.js";
import { memoryStorage } from "./support/kv-test-context.js";
import { vaultError } from "./support/vault-error.js";

const PREFIX = "logical/0d9a3c1e-0000-4000-8000-000000000001/";
const T0 = Date.parse("2024-05-01T10:00:00.123Z");

let storage: SqliteBackend;
let clock: number;
let engine: KvV2Engine;

beforeEach(() => {
  storage = memoryStorage();
  clock = T0;
  engine = new KvV2Engine(PREFIX, { now: () => clock });
});

afterEach(async () => {
  await storage.close();
});

const tx = <T>(fn: (tx: Transaction) => Promise<T>): Promise<T> => storage.transaction(fn);
const write = (path: string, data: unknown, options?: unknown) => tx((t) => engine.write(t, path, data, options));
const read = (path: string, version?: unknown) => engine.readData(storage, path, version);

// biome-ignore lint/suspicious/noExplicitAny: the engine's answer data of any shape (versions, metadata, config), read field by field by the assertions
function dataOf(response: KvResponse): any {
  if (response.status === 204) throw new Error("204 has no data");
  return response.data;
}

describe("data write and read", () => {
  it("writes a version and answers Vault's write shape", async () => {
    const response = await write("app/db", { password: "s3cret", port: 5432 });
    expect(response).toEqual({
      status: 200,
      data: { created_time: "2024-05-01T10:00:00.123Z", custom_metadata: null, deletion_time: "", destroyed: false, version: 1 },
    });
  });

  it("reads the latest version with its metadata", async () => {
    await write("app/db", { password: "one" });
    clock += 1000;
    await write("app/db", { password: "two", nested: { a: [1, 2] } });
    const response = await read("app/db");
    expect(response.status).toBe(200);
    expect(dataOf(response)).toEqual({
      data: { password: "two", nested: { a: [1, 2] } },
      metadata: { created_time: "2024-05-01T10:00:01.123Z", custom_metadata: null, deletion_time: "", destroyed: false, version: 2 },
    });
  });

  it("reads a given version (query string or number); 0 and negatives mean the latest", async () => {
    await write("k", { v: 1 });
    await write("k", { v: 2 });
    expect(dataOf(await read("k", "1")).data).toEqual({ v: 1 });
    expect(dataOf(await read("k", 2)).data).toEqual({ v: 2 });
    expect(dataOf(await read("k", "0")).data).toEqual({ v: 2 });
    expect(dataOf(await read("k", "-1")).data).toEqual({ v: 2 });
    expect(dataOf(await read("k", "")).data).toEqual({ v: 2 });
  });

  it("answers 404 without a body for an absent key or version", async () => {
    expect(await read("nope")).toEqual({ status: 404, data: null });
    await write("k", { v: 1 });
    expect(await read("k", 7)).toEqual({ status: 404, data: null });
  });

  it("refuses a version that is not a number", async () => {
    const error = await vaultError(read("k", "abc"));
    expect(error.status).toBe(400);
  });

  it("refuses a write without data, or with data that is not a map", async () => {
    expect((await vaultError(write("k", undefined))).errors).toEqual(["no data provided"]);
    expect((await vaultError(write("k", null))).errors).toEqual(["no data provided"]);
    const notMap = await vaultError(write("k", ["a"]));
    expect(notMap.status).toBe(400);
    expect(notMap.errors[0]).toContain('field "data"');
    expect((await vaultError(write("k", { a: 1 }, "cas"))).status).toBe(400);
  });

  it("accepts an empty data map", async () => {
    await write("k", {});
    expect(dataOf(await read("k")).data).toEqual({});
  });

  it("refuses invalid secret paths with 400 and reads them as absent", async () => {
    for (const path of ["a//b", "./a", "a/..", "a\u0000b", "/a", "a/"]) {
      expect((await vaultError(write(path, { a: 1 }))).status).toBe(400);
      expect((await read(path)).status).toBe(404);
    }
    expect((await vaultError(write("x".repeat(2000), { a: 1 }))).status).toBe(400);
  });

  it("stores version data and metadata under the documented keys", async () => {
    await write("team/app", { a: 1 });
    expect(JSON.parse(((await storage.get(`${PREFIX}versions/team/app/1`)) as Buffer).toString())).toEqual({ a: 1 });
    const meta = JSON.parse(((await storage.get(`${PREFIX}metadata/team/app`)) as Buffer).toString());
    expect(meta).toMatchObject({ current_version: 1, oldest_version: 0, versions: { "1": { deletion_time: "", destroyed: false } } });
  });

  it("keeps a key and a folder of the same name apart", async () => {
    await write("a", { top: true });
    await write("a/1", { nested: true });
    await write("a", { top: 2 });
    expect(dataOf(await read("a")).data).toEqual({ top: 2 });
    expect(dataOf(await read("a/1")).data).toEqual({ nested: true });
    await tx((t) => engine.deleteMetadata(t, "a"));
    expect((await read("a")).status).toBe(404);
    expect(dataOf(await read("a/1")).data).toEqual({ nested: true });
  });
});

describe("check-and-set", () => {
  it("cas 0 writes only when the key has no version", async () => {
    expect(dataOf(await write("k", { v: 1 }, { cas: 0 })).version).toBe(1);
    const error = await vaultError(write("k", { v: 2 }, { cas: 0 }));
    expect(error.status).toBe(400);
    expect(error.errors).toEqual([CAS_MISMATCH]);
  });

  it("cas n writes only when n is the current version (numbers or numeric strings)", async () => {
    await write("k", { v: 1 });
    expect(await vaultError(write("k", { v: 2 }, { cas: 2 }))).toMatchObject({ status: 400, errors: [CAS_MISMATCH] });
    expect(dataOf(await write("k", { v: 2 }, { cas: 1 })).version).toBe(2);
    expect(dataOf(await write("k", { v: 3 }, { cas: "2" })).version).toBe(3);
    expect((await vaultError(write("k", { v: 4 }, { cas: "two" }))).errors).toEqual(["error parsing check-and-set parameter"]);
  });

  it("a failed check-and-set writes nothing", async () => {
    await write("k", { v: 1 });
    await vaultError(write("k", { v: 2 }, { cas: 5 }));
    expect(dataOf(await read("k")).metadata.version).toBe(1);
    expect(await storage.get(`${PREFIX}versions/k/2`)).toBeNull();
  });

  it("cas_required on the key refuses writes without cas", async () => {
    await write("k", { v: 1 });
    await tx((t) => engine.writeMetadata(t, "k", { cas_required: true }));
    const error = await vaultError(write("k", { v: 2 }));
    expect(error.status).toBe(400);
    expect(error.errors).toEqual([CAS_REQUIRED]);
    expect(dataOf(await write("k", { v: 2 }, { cas: 1 })).version).toBe(2);
  });

  it("cas_required in the mount configuration refuses writes without cas", async () => {
    await tx((t) => engine.writeConfig(t, { cas_required: true }));
    expect((await vaultError(write("new", { v: 1 }))).errors).toEqual([CAS_REQUIRED]);
    expect(dataOf(await write("new", { v: 1 }, { cas: 0 })).version).toBe(1);
  });

  it("a metadata write of cas_required false under a mount that requires it warns", async () => {
    await tx((t) => engine.writeConfig(t, { cas_required: true }));
    expect(await tx((t) => engine.writeMetadata(t, "k", { cas_required: false }))).toEqual({
      status: 200,
      data: null,
      warnings: [CAS_REQUIRED_IGNORED],
    });
    expect(await engine.metadataWarnings(storage, { cas_required: "false" })).toEqual([CAS_REQUIRED_IGNORED]);
    expect(await engine.metadataWarnings(storage, { cas_required: true })).toEqual([]);
    expect(await engine.metadataWarnings(storage, { max_versions: 3 })).toEqual([]);
  });
});

describe("max_versions", () => {
  it("keeps 10 versions by default, trimming the oldest and advancing oldest_version as Vault does", async () => {
    for (let i = 1; i <= 9; i++) await write("k", { i });
    let meta = dataOf(await engine.readMetadata(storage, "k"));
    expect(meta.oldest_version).toBe(0);
    expect(Object.keys(meta.versions)).toHaveLength(9);
    await write("k", { i: 10 });
    meta = dataOf(await engine.readMetadata(storage, "k"));
    // Vault moves oldest_version to 1 once the window is full.
    expect(meta.oldest_version).toBe(1);
    expect(Object.keys(meta.versions)).toHaveLength(10);
    for (let i = 11; i <= 13; i++) await write("k", { i });
    meta = dataOf(await engine.readMetadata(storage, "k"));
    expect(meta.current_version).toBe(13);
    expect(meta.oldest_version).toBe(4);
    expect(Object.keys(meta.versions).map(Number)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(await read("k", 3)).toEqual({ status: 404, data: null });
    expect(await storage.get(`${PREFIX}versions/k/3`)).toBeNull();
    expect(dataOf(await read("k", 4)).data).toEqual({ i: 4 });
  });

  it("a key's max_versions trims on the next write, several versions at once", async () => {
    for (let i = 1; i <= 5; i++) await write("k", { i });
    await tx((t) => engine.writeMetadata(t, "k", { max_versions: 2 }));
    await write("k", { i: 6 });
    const meta = dataOf(await engine.readMetadata(storage, "k"));
    expect(meta.max_versions).toBe(2);
    expect(meta.oldest_version).toBe(5);
    expect(Object.keys(meta.versions).map(Number)).toEqual([5, 6]);
    const keys = (await storage.list(`${PREFIX}versions/k/`)).sort();
    expect(keys).toEqual(["5", "6"]);
  });

  it("the mount's max_versions applies to keys without their own", async () => {
    await tx((t) => engine.writeConfig(t, { max_versions: 3 }));
    for (let i = 1; i <= 5; i++) await write("k", { i });
    expect(Object.keys(dataOf(await engine.readMetadata(storage, "k")).versions).map(Number)).toEqual([3, 4, 5]);
  });

  it("with both set, the larger of the key's and the mount's setting wins (Vault's AddVersion)", async () => {
    await tx((t) => engine.writeConfig(t, { max_versions: 2 }));
    await tx((t) => engine.writeMetadata(t, "k", { max_versions: 4 }));
    for (let i = 1; i <= 6; i++) await write("k", { i });
    expect(Object.keys(dataOf(await engine.readMetadata(storage, "k")).versions).map(Number)).toEqual([3, 4, 5, 6]);
  });

  it("refuses negative max_versions", async () => {
    expect((await vaultError(tx((t) => engine.writeMetadata(t, "k", { max_versions: -1 })))).status).toBe(400);
    expect((await vaultError(tx((t) => engine.writeConfig(t, { max_versions: -1 })))).status).toBe(400);
  });
});

describe("delete, undelete, destroy", () => {
  it("DELETE data soft-deletes the latest version: 404 with its metadata, data null", async () => {
    await write("k", { v: 1 });
    await write("k", { v: 2 });
    clock += 5000;
    expect(await tx((t) => engine.deleteLatest(t, "k"))).toEqual({ status: 204 });
    const response = await read("k");
    expect(response.status).toBe(404);
    expect(dataOf(response)).toEqual({
      data: null,
      metadata: {
        created_time: "2024-05-01T10:00:00.123Z",
        custom_metadata: null,
        deletion_time: "2024-05-01T10:00:05.123Z",
        destroyed: false,
        version: 2,
      },
    });
    // Older versions stay readable.
    expect(dataOf(await read("k", 1)).data).toEqual({ v: 1 });
  });

  it("DELETE data of an absent key, or an already deleted version, is a no-op 204", async () => {
    expect(await tx((t) => engine.deleteLatest(t, "nope"))).toEqual({ status: 204 });
    await write("k", { v: 1 });
    await tx((t) => engine.deleteLatest(t, "k"));
    const first = dataOf(await read("k")).metadata.deletion_time;
    clock += 1000;
    await tx((t) => engine.deleteLatest(t, "k"));
    expect(dataOf(await read("k")).metadata.deletion_time).toBe(first);
  });

  it("delete/ soft-deletes the versions listed; undelete/ restores them", async () => {
    for (let i = 1; i <= 3; i++) await write("k", { i });
    expect(await tx((t) => engine.deleteVersions(t, "k", [1, "2", 9]))).toEqual({ status: 204 });
    clock += 1;
    expect((await read("k", 1)).status).toBe(404);
    expect((await read("k", 2)).status).toBe(404);
    expect((await read("k", 3)).status).toBe(200);
    expect(await tx((t) => engine.undeleteVersions(t, "k", "1,2"))).toEqual({ status: 204 });
    expect(dataOf(await read("k", 1))).toMatchObject({ data: { i: 1 }, metadata: { deletion_time: "" } });
    expect(dataOf(await read("k", 2)).data).toEqual({ i: 2 });
  });

  it("delete/, undelete/ and destroy/ need versions", async () => {
    await write("k", { v: 1 });
    expect((await vaultError(tx((t) => engine.deleteVersions(t, "k", [])))).errors).toEqual(["No version number provided"]);
    expect((await vaultError(tx((t) => engine.undeleteVersions(t, "k", undefined)))).errors).toEqual(["No version number provided"]);
    expect((await vaultError(tx((t) => engine.destroyVersions(t, "k", [])))).errors).toEqual(["no version number provided"]);
    expect((await vaultError(tx((t) => engine.destroyVersions(t, "k", ["x"])))).status).toBe(400);
  });

  it("of an absent key are no-op 204s", async () => {
    expect(await tx((t) => engine.deleteVersions(t, "nope", [1]))).toEqual({ status: 204 });
    expect(await tx((t) => engine.undeleteVersions(t, "nope", [1]))).toEqual({ status: 204 });
    expect(await tx((t) => engine.destroyVersions(t, "nope", [1]))).toEqual({ status: 204 });
    expect(await storage.list(PREFIX)).toEqual([]);
  });

  it("destroy/ wipes the version data for good: 404 with destroyed metadata, undelete cannot bring it back", async () => {
    await write("k", { v: 1 });
    await write("k", { v: 2 });
    expect(await tx((t) => engine.destroyVersions(t, "k", [2]))).toEqual({ status: 204 });
    expect(await storage.get(`${PREFIX}versions/k/2`)).toBeNull();
    const response = await read("k");
    expect(response.status).toBe(404);
    expect(dataOf(response)).toEqual({
      data: null,
      metadata: { created_time: "2024-05-01T10:00:00.123Z", custom_metadata: null, deletion_time: "", destroyed: true, version: 2 },
    });
    await tx((t) => engine.undeleteVersions(t, "k", [2]));
    expect(dataOf(await read("k")).metadata.destroyed).toBe(true);
    expect(dataOf(await engine.readMetadata(storage, "k")).versions["2"]).toEqual({
      created_time: "2024-05-01T10:00:00.123Z",
      deletion_time: "",
      destroyed: true,
    });
    expect(dataOf(await read("k", 1)).data).toEqual({ v: 1 });
  });

  it("a deleted version that is then destroyed reads as destroyed and deleted", async () => {
    await write("k", { v: 1 });
    await tx((t) => engine.deleteLatest(t, "k"));
    await tx((t) => engine.destroyVersions(t, "k", [1]));
    clock += 1;
    const metadata = dataOf(await read("k")).metadata;
    expect(metadata.destroyed).toBe(true);
    expect(metadata.deletion_time).not.toBe("");
  });
});

describe("delete_version_after", () => {
  it("schedules the deletion of new versions; the version reads until then", async () => {
    await tx((t) => engine.writeMetadata(t, "k", { delete_version_after: "1h" }));
    const written = dataOf(await write("k", { v: 1 }));
    expect(written.deletion_time).toBe("2024-05-01T11:00:00.123Z");
    expect((await read("k")).status).toBe(200);
    clock += 3600_000 + 1;
    const expired = await read("k");
    expect(expired.status).toBe(404);
    expect(dataOf(expired).metadata.deletion_time).toBe("2024-05-01T11:00:00.123Z");
  });

  it("takes the smaller of the mount's and the key's; a disabled mount setting turns it off", async () => {
    await tx((t) => engine.writeConfig(t, { delete_version_after: "30m" }));
    await tx((t) => engine.writeMetadata(t, "k", { delete_version_after: 7200 }));
    expect(dataOf(await write("k", { v: 1 })).deletion_time).toBe("2024-05-01T10:30:00.123Z");
    expect(dataOf(await engine.readConfig(storage))).toEqual({ cas_required: false, delete_version_after: "30m0s", max_versions: 0 });
    expect(dataOf(await engine.readMetadata(storage, "k")).delete_version_after).toBe("2h0m0s");
    await tx((t) => engine.writeConfig(t, { delete_version_after: "-5s" }));
    expect(dataOf(await engine.readConfig(storage)).delete_version_after).toBe("-1s");
    expect(dataOf(await write("k", { v: 2 })).deletion_time).toBe("");
    await tx((t) => engine.writeConfig(t, { delete_version_after: 0 }));
    expect(dataOf(await engine.readConfig(storage)).delete_version_after).toBe("0s");
  });

  it("undelete schedules the deletion again from now", async () => {
    await tx((t) => engine.writeMetadata(t, "k", { delete_version_after: "10s" }));
    await write("k", { v: 1 });
    clock += 20_000;
    expect((await read("k")).status).toBe(404);
    await tx((t) => engine.undeleteVersions(t, "k", [1]));
    expect(dataOf(await read("k")).metadata.deletion_time).toBe("2024-05-01T10:00:30.123Z");
  });

  it("refuses a negative or malformed duration on a key", async () => {
    expect((await vaultError(tx((t) => engine.writeMetadata(t, "k", { delete_version_after: "-1s" })))).status).toBe(400);
    expect((await vaultError(tx((t) => engine.writeMetadata(t, "k", { delete_version_after: "soon" })))).status).toBe(400);
  });
});

describe("patch (JSON merge patch)", () => {
  const patch = (path: string, data: unknown, options?: unknown) => tx((t) => engine.patch(t, path, data, options));

  it("merges onto the current version as a new version; null removes a key, nested maps merge", async () => {
    await write("k", { keep: 1, drop: "x", nested: { a: 1, b: 2 }, list: [1, 2] });
    const response = await patch("k", { drop: null, added: true, nested: { b: null, c: 3 }, list: [3] });
    expect(dataOf(response).version).toBe(2);
    expect(dataOf(await read("k")).data).toEqual({ keep: 1, added: true, nested: { a: 1, c: 3 }, list: [3] });
    expect(dataOf(await read("k", 1)).data).toEqual({ keep: 1, drop: "x", nested: { a: 1, b: 2 }, list: [1, 2] });
  });

  it("404 when the key does not exist, or has no version", async () => {
    expect((await vaultError(patch("nope", { a: 1 }))).status).toBe(404);
    await tx((t) => engine.writeMetadata(t, "meta-only", { max_versions: 3 }));
    expect((await vaultError(patch("meta-only", { a: 1 }))).status).toBe(404);
  });

  it("404 with the version's metadata when the current version is deleted or destroyed", async () => {
    await write("k", { a: 1 });
    await tx((t) => engine.deleteLatest(t, "k"));
    clock += 1;
    const error = await vaultError(patch("k", { a: 2 }));
    expect(error).toBeInstanceOf(KvNotFoundError);
    expect((error as KvNotFoundError).data).toMatchObject({ version: 1, destroyed: false });
    await write("d", { a: 1 });
    await tx((t) => engine.destroyVersions(t, "d", [1]));
    expect(((await vaultError(patch("d", { a: 2 }))) as KvNotFoundError).data).toMatchObject({ version: 1, destroyed: true });
  });

  it("supports check-and-set and cas_required", async () => {
    await write("k", { a: 1 });
    expect(await vaultError(patch("k", { a: 2 }, { cas: 0 }))).toMatchObject({ status: 400, errors: [CAS_MISMATCH] });
    expect(dataOf(await patch("k", { a: 2 }, { cas: 1 })).version).toBe(2);
    await tx((t) => engine.writeMetadata(t, "k", { cas_required: true }));
    expect((await vaultError(patch("k", { a: 3 }))).errors).toEqual([CAS_REQUIRED]);
  });

  it("needs data", async () => {
    await write("k", { a: 1 });
    expect((await vaultError(patch("k", undefined))).errors).toEqual(["no data provided"]);
    expect((await vaultError(patch("k", "str"))).status).toBe(400);
  });

  it("does not let __proto__ members reach a prototype", async () => {
    await write("k", JSON.parse('{"a":1}'));
    await patch("k", JSON.parse('{"__proto__":{"polluted":true}}'));
    const data = dataOf(await read("k")).data;
    expect(Object.hasOwn(data, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("metadata", () => {
  it("reads Vault's metadata shape; 404 when absent", async () => {
    expect(await engine.readMetadata(storage, "k")).toEqual({ status: 404, data: null });
    await write("k", { v: 1 });
    clock += 2000;
    await write("k", { v: 2 });
    expect(dataOf(await engine.readMetadata(storage, "k"))).toEqual({
      cas_required: false,
      created_time: "2024-05-01T10:00:00.123Z",
      current_version: 2,
      custom_metadata: null,
      delete_version_after: "0s",
      max_versions: 0,
      oldest_version: 0,
      updated_time: "2024-05-01T10:00:02.123Z",
      versions: {
        "1": { created_time: "2024-05-01T10:00:00.123Z", deletion_time: "", destroyed: false },
        "2": { created_time: "2024-05-01T10:00:02.123Z", deletion_time: "", destroyed: false },
      },
    });
  });

  it("a metadata write creates the metadata of a new key, and sets only the fields given", async () => {
    expect(await tx((t) => engine.writeMetadata(t, "new", { max_versions: 5, custom_metadata: { owner: "jdoe", n: 3 } }))).toEqual({
      status: 204,
    });
    let meta = dataOf(await engine.readMetadata(storage, "new"));
    expect(meta).toMatchObject({ max_versions: 5, current_version: 0, custom_metadata: { owner: "jdoe", n: "3" }, versions: {} });
    await tx((t) => engine.writeMetadata(t, "new", { cas_required: "true", delete_version_after: "3h25m19s" }));
    meta = dataOf(await engine.readMetadata(storage, "new"));
    expect(meta).toMatchObject({
      max_versions: 5,
      cas_required: true,
      delete_version_after: "3h25m19s",
      custom_metadata: { owner: "jdoe", n: "3" },
    });
    // custom_metadata is replaced whole by a write.
    await tx((t) => engine.writeMetadata(t, "new", { custom_metadata: { team: "a" } }));
    expect(dataOf(await engine.readMetadata(storage, "new")).custom_metadata).toEqual({ team: "a" });
  });

  it("a metadata write without fields writes nothing", async () => {
    expect(await tx((t) => engine.writeMetadata(t, "k", {}))).toEqual({ status: 204 });
    expect(await engine.readMetadata(storage, "k")).toEqual({ status: 404, data: null });
    expect((await vaultError(tx((t) => engine.writeMetadata(t, "", { max_versions: 1 })))).errors).toEqual(["missing path"]);
  });

  it("custom_metadata shows in data reads and writes", async () => {
    await tx((t) => engine.writeMetadata(t, "k", { custom_metadata: { owner: "jdoe" } }));
    expect(dataOf(await write("k", { a: 1 })).custom_metadata).toEqual({ owner: "jdoe" });
    expect(dataOf(await read("k")).metadata.custom_metadata).toEqual({ owner: "jdoe" });
  });

  it("validates custom_metadata with Vault's limits", async () => {
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    const many = await vaultError(tx((t) => engine.writeMetadata(t, "k", { custom_metadata: tooMany })));
    expect(many.errors[0]).toContain("payload must contain at most 64 keys, provided 65");
    const bad = await vaultError(
      tx((t) => engine.writeMetadata(t, "k", { custom_metadata: { ["x".repeat(129)]: "v", empty: "", ctl: "a\u0001" } })),
    );
    expect(bad.status).toBe(400);
    expect(bad.errors[0]).toMatch(/^3 errors occurred:\n/);
    expect(bad.errors[0]).toContain("custom_metadata validation failed");
    expect((await vaultError(tx((t) => engine.writeMetadata(t, "k", { custom_metadata: "x" })))).status).toBe(400);
  });

  it("PATCH metadata changes only the fields given, merges custom_metadata, null resets", async () => {
    await tx((t) => engine.writeMetadata(t, "k", { max_versions: 5, cas_required: true, custom_metadata: { a: "1", b: "2" } }));
    expect(await tx((t) => engine.patchMetadata(t, "k", { custom_metadata: { a: null, c: "3" }, max_versions: 7 }))).toEqual({
      status: 204,
    });
    let meta = dataOf(await engine.readMetadata(storage, "k"));
    expect(meta).toMatchObject({ max_versions: 7, cas_required: true, custom_metadata: { b: "2", c: "3" } });
    await tx((t) => engine.patchMetadata(t, "k", { cas_required: null, custom_metadata: null }));
    meta = dataOf(await engine.readMetadata(storage, "k"));
    expect(meta).toMatchObject({ max_versions: 7, cas_required: false, custom_metadata: null });
    expect((await vaultError(tx((t) => engine.patchMetadata(t, "absent", { max_versions: 1 })))).status).toBe(404);
  });

  it("DELETE metadata removes every version and the metadata", async () => {
    for (let i = 1; i <= 3; i++) await write("k", { i });
    await tx((t) => engine.destroyVersions(t, "k", [1]));
    expect(await tx((t) => engine.deleteMetadata(t, "k"))).toEqual({ status: 204 });
    expect(await engine.readMetadata(storage, "k")).toEqual({ status: 404, data: null });
    expect(await read("k")).toEqual({ status: 404, data: null });
    expect(await storage.list(PREFIX)).toEqual([]);
    expect(await tx((t) => engine.deleteMetadata(t, "k"))).toEqual({ status: 204 });
  });

  it("lists direct children with folders as Vault does; 404 when empty", async () => {
    for (const path of ["app", "app/db", "app/api/key", "app/api/cert", "web/front", "zeta"]) await write(path, { p: path });
    expect(dataOf(await engine.listMetadata(storage, ""))).toEqual({ keys: ["app", "app/", "web/", "zeta"] });
    expect(dataOf(await engine.listMetadata(storage, "app/"))).toEqual({ keys: ["api/", "db"] });
    expect(dataOf(await engine.listMetadata(storage, "app"))).toEqual({ keys: ["api/", "db"] });
    expect(dataOf(await engine.listMetadata(storage, "app/api/"))).toEqual({ keys: ["cert", "key"] });
    expect(await engine.listMetadata(storage, "nope/")).toEqual({ status: 404, data: null });
    expect(await engine.listMetadata(storage, "app/db/")).toEqual({ status: 404, data: null });
    expect(await engine.listMetadata(storage, "a//")).toEqual({ status: 404, data: null });
    // A key with every version deleted is still listed (its metadata exists); deleting the metadata removes it.
    await tx((t) => engine.deleteLatest(t, "zeta"));
    expect(dataOf(await engine.listMetadata(storage, "")).keys).toContain("zeta");
    await tx((t) => engine.deleteMetadata(t, "zeta"));
    await tx((t) => engine.deleteMetadata(t, "web/front"));
    expect(dataOf(await engine.listMetadata(storage, ""))).toEqual({ keys: ["app", "app/"] });
  });
});

describe("config", () => {
  it("reads defaults, and writes only the fields given", async () => {
    expect(await engine.readConfig(storage)).toEqual({
      status: 200,
      data: { cas_required: false, delete_version_after: "0s", max_versions: 0 },
    });
    expect(await tx((t) => engine.writeConfig(t, { max_versions: "5" }))).toEqual({ status: 204 });
    await tx((t) => engine.writeConfig(t, { cas_required: true, delete_version_after: "3h25m19s" }));
    expect(dataOf(await engine.readConfig(storage))).toEqual({ cas_required: true, delete_version_after: "3h25m19s", max_versions: 5 });
    expect(await tx((t) => engine.writeConfig(t, {}))).toEqual({ status: 204 });
    expect((await vaultError(tx((t) => engine.writeConfig(t, { cas_required: "maybe" })))).status).toBe(400);
  });
});

describe("subkeys", () => {
  it("answers the structure with leaves as null, down to depth", async () => {
    await write("k", { foo: "abc", bar: { baz: "def", qux: { deep: 1 }, empty: {} }, quux: [1] });
    expect(dataOf(await engine.readSubkeys(storage, "k"))).toMatchObject({
      subkeys: { foo: null, bar: { baz: null, qux: { deep: null }, empty: null }, quux: null },
      metadata: { version: 1 },
    });
    expect(dataOf(await engine.readSubkeys(storage, "k", undefined, "1")).subkeys).toEqual({ foo: null, bar: null, quux: null });
    expect(dataOf(await engine.readSubkeys(storage, "k", undefined, 2)).subkeys).toEqual({
      foo: null,
      bar: { baz: null, qux: null, empty: null },
      quux: null,
    });
    await tx((t) => engine.deleteLatest(t, "k"));
    clock += 1;
    const deleted = await engine.readSubkeys(storage, "k");
    expect(deleted.status).toBe(404);
    expect(dataOf(deleted)).toMatchObject({ subkeys: null, metadata: { version: 1 } });
    expect(await engine.readSubkeys(storage, "nope")).toEqual({ status: 404, data: null });
  });
});

describe("exists", () => {
  it("is Vault's existence check: true once the key has metadata", async () => {
    expect(await engine.exists(storage, "k")).toBe(false);
    await tx((t) => engine.writeMetadata(t, "k", { max_versions: 2 }));
    expect(await engine.exists(storage, "k")).toBe(true);
    expect(await engine.exists(storage, "a//b")).toBe(false);
  });
});
