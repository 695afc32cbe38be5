/**
 * The KV version 1 engine over a real (in-memory) SQLite storage, and the mount table's KV
 * version handling: Vault's spellings of a version 1 mount, its tune rules, and the purge of a
 * version 1 mount's data on unmount.
 */
import { describe, expect, it } from "vitest";
import { MAX_KEY_BYTES } from "@egide/storage-core";
import { KV_V1_DEFAULT_LEASE_SECONDS, KvV1Engine } from "../src/kv/kv-v1-engine.js";
import { mountStoragePrefix } from "../src/mounts/mount-table.js";
import { useMemoryMountTable } from "./support/memory-mount-table.js";
import { vaultError } from "./support/vault-error.js";

const fx = useMemoryMountTable();
const { tx } = fx;
const PREFIX = "logical/11111111-2222-3333-4444-555555555555/";

describe("KvV1Engine", () => {
  it("stores the whole body as one JSON value at <prefix><path>; a write replaces it", async () => {
    const engine = new KvV1Engine(PREFIX);
    expect(await tx((t) => engine.write(t, "app/db", { user: "u", nested: { n: 1 } }))).toEqual({ status: 204 });
    expect(JSON.parse(((await fx.storage.get(`${PREFIX}app/db`)) as Buffer).toString("utf8"))).toEqual({ user: "u", nested: { n: 1 } });
    await tx((t) => engine.write(t, "app/db", { other: true }));
    const read = await engine.read(fx.storage, "app/db");
    expect(read).toEqual({ status: 200, data: { other: true }, leaseDuration: KV_V1_DEFAULT_LEASE_SECONDS });
    // Nothing else is stored: no metadata, no versions.
    expect(await fx.storage.list(PREFIX)).toEqual(["app/"]);
    expect(await fx.storage.list(`${PREFIX}app/`)).toEqual(["db"]);
  });

  it("reads 404 when nothing is stored, or when the path cannot be a key", async () => {
    const engine = new KvV1Engine(PREFIX);
    for (const path of ["absent", "", "a//b", "a/../b", "folder/"]) {
      expect(await engine.read(fx.storage, path), path).toEqual({ status: 404, data: null });
    }
  });

  it("answers the secret's ttl (or lease) as lease_duration when it parses as a duration, else the 32-day default", async () => {
    const engine = new KvV1Engine(PREFIX);
    const cases: Array<[Record<string, unknown>, number]> = [
      [{ ttl: "1h" }, 3600],
      [{ ttl: 90 }, 90],
      [{ ttl: "45" }, 45],
      [{ lease: "2m" }, 120],
      [{ ttl: "30m", lease: "2m" }, 1800],
      [{ ttl: "soon" }, KV_V1_DEFAULT_LEASE_SECONDS],
      [{ ttl: "0s" }, KV_V1_DEFAULT_LEASE_SECONDS],
      [{ ttl: "-1h" }, KV_V1_DEFAULT_LEASE_SECONDS],
      [{ ttl: { h: 1 } }, KV_V1_DEFAULT_LEASE_SECONDS],
      [{ foo: "bar" }, KV_V1_DEFAULT_LEASE_SECONDS],
    ];
    for (const [data, expected] of cases) {
      await tx((t) => engine.write(t, "t", data));
      const read = await engine.read(fx.storage, "t");
      expect(read, JSON.stringify(data)).toEqual({ status: 200, data, leaseDuration: expected });
    }
  });

  it("refuses a write at the root, without fields, or at a path that cannot be a key, and stores nothing", async () => {
    const engine = new KvV1Engine(PREFIX);
    expect((await vaultError(tx((t) => engine.write(t, "", { a: 1 })))).errors).toEqual(["missing path"]);
    expect((await vaultError(tx((t) => engine.write(t, "x", {})))).errors).toEqual(["missing data fields"]);
    for (const path of ["dir/", "a//b", "a/./b", "x\u0001"]) {
      const error = await vaultError(tx((t) => engine.write(t, path, { a: 1 })));
      expect(error.status, path).toBe(400);
      expect(error.errors[0], path).toMatch(/^invalid secret path/);
    }
    const tooLong = "k".repeat(MAX_KEY_BYTES - PREFIX.length + 1);
    expect((await vaultError(tx((t) => engine.write(t, tooLong, { a: 1 })))).errors[0]).toMatch(/longer than/);
    const longest = "k".repeat(MAX_KEY_BYTES - PREFIX.length);
    await tx((t) => engine.write(t, longest, { a: 1 }));
    expect((await engine.read(fx.storage, longest)).status).toBe(200);
    expect(await fx.storage.list(PREFIX)).toEqual([longest]);
  });

  it("lists the direct children of a folder, folders with a trailing /; 404 when empty", async () => {
    const engine = new KvV1Engine(PREFIX);
    for (const path of ["a", "a/b", "a/c/d", "b/e", "z"]) await tx((t) => engine.write(t, path, { v: path }));
    expect(await engine.list(fx.storage, "")).toEqual({ status: 200, data: { keys: ["a", "a/", "b/", "z"] } });
    expect(await engine.list(fx.storage, "a/")).toEqual({ status: 200, data: { keys: ["b", "c/"] } });
    // As in Vault, a folder named without its slash is listed as the folder.
    expect(await engine.list(fx.storage, "a")).toEqual({ status: 200, data: { keys: ["b", "c/"] } });
    expect(await engine.list(fx.storage, "a/c/")).toEqual({ status: 200, data: { keys: ["d"] } });
    for (const folder of ["none/", "z/", "a//"]) expect(await engine.list(fx.storage, folder), folder).toEqual({ status: 404, data: null });
  });

  it("deletes for good; deleting nothing is 204 too", async () => {
    const engine = new KvV1Engine(PREFIX);
    await tx((t) => engine.write(t, "gone", { a: 1 }));
    expect(await engine.exists(fx.storage, "gone")).toBe(true);
    expect(await tx((t) => engine.delete(t, "gone"))).toEqual({ status: 204 });
    expect(await engine.exists(fx.storage, "gone")).toBe(false);
    expect(await fx.storage.get(`${PREFIX}gone`)).toBeNull();
    expect(await tx((t) => engine.delete(t, "never"))).toEqual({ status: 204 });
    expect(await tx((t) => engine.delete(t, "a//b"))).toEqual({ status: 204 });
  });

  it("keeps mounts apart: each engine sees only its own prefix", async () => {
    const a = new KvV1Engine("logical/a/");
    const b = new KvV1Engine("logical/b/");
    await tx((t) => a.write(t, "k", { from: "a" }));
    expect((await b.read(fx.storage, "k")).status).toBe(404);
    expect((await b.list(fx.storage, "")).status).toBe(404);
    expect(await b.exists(fx.storage, "k")).toBe(false);
  });
});

describe("MountTable and KV version 1", () => {
  it("mounts version 1 for kv without a version, kv with version 1 (string or number), and the kv-v1 alias", async () => {
    const inputs = [
      { type: "kv" },
      { type: "kv", options: {} },
      { type: "kv", options: { version: "" } },
      { type: "kv", options: { version: "1" } },
      { type: "kv", options: { version: 1 } },
      { type: "kv-v1" },
      { type: "kv-v1", options: { version: "1" } },
    ];
    for (const [index, input] of inputs.entries()) {
      const mount = await tx((t) => fx.mounts.enable(t, `v1-${index}`, input));
      expect(mount, JSON.stringify(input)).toMatchObject({ type: "kv", options: { version: "1" } });
    }
    expect((await tx((t) => fx.mounts.enable(t, "v2", { type: "kv", options: { version: "2" } }))).options).toEqual({ version: "2" });
    expect((await fx.mounts.list()).map((m) => `${m.path}${m.options.version}`)).toEqual([
      "v1-0/1",
      "v1-1/1",
      "v1-2/1",
      "v1-3/1",
      "v1-4/1",
      "v1-5/1",
      "v1-6/1",
      "v2/2",
    ]);
  });

  it("refuses a version that is neither 1 nor 2, and an alias contradicted by options.version", async () => {
    for (const input of [
      { type: "kv", options: { version: "3" } },
      { type: "kv", options: { version: true } },
      { type: "kv-v1", options: { version: "2" } },
      { type: "kv-v2", options: { version: 1 } },
    ]) {
      const error = await vaultError(tx((t) => fx.mounts.enable(t, "x", input)));
      expect(error.status, JSON.stringify(input)).toBe(400);
      expect(error.errors[0]).toMatch(/^unsupported/);
    }
    expect(await fx.mounts.list()).toEqual([]);
  });

  it("tune: the same version is accepted; an upgrade 1 → 2 and a downgrade 2 → 1 are refused with Vault-like messages", async () => {
    await tx((t) => fx.mounts.enable(t, "old", { type: "kv" }));
    await tx((t) => fx.mounts.enable(t, "new", { type: "kv-v2" }));
    expect((await tx((t) => fx.mounts.tune(t, "old", { options: { version: "1" }, description: "d" }))).options).toEqual({ version: "1" });
    const upgrade = await vaultError(tx((t) => fx.mounts.tune(t, "old", { options: { version: "2" }, description: "changed" })));
    expect(upgrade.status).toBe(400);
    expect(upgrade.errors[0]).toMatch(/^cannot upgrade mount from version 1 to version 2: /);
    const downgrade = await vaultError(tx((t) => fx.mounts.tune(t, "new", { options: { version: 1 } })));
    expect(downgrade.errors).toEqual(["cannot downgrade mount from version 2"]);
    expect((await vaultError(tx((t) => fx.mounts.tune(t, "old", { options: { version: "9" } })))).errors[0]).toMatch(/invalid version/);
    fx.mounts.invalidate();
    // Nothing changed by the refused tunes, not even the description.
    expect(await fx.mounts.get("old")).toMatchObject({ options: { version: "1" }, description: "d" });
    expect((await fx.mounts.get("new"))?.options).toEqual({ version: "2" });
  });

  it("unmounting a version 1 mount deletes every secret below its prefix, and only those", async () => {
    const gone = await tx((t) => fx.mounts.enable(t, "gone", { type: "kv" }));
    const kept = await tx((t) => fx.mounts.enable(t, "kept", { type: "kv" }));
    const goneEngine = new KvV1Engine(mountStoragePrefix(gone));
    const keptEngine = new KvV1Engine(mountStoragePrefix(kept));
    for (const path of ["a", "b/c", "data/x", "metadata/y"]) {
      await tx((t) => goneEngine.write(t, path, { v: 1 }));
      await tx((t) => keptEngine.write(t, path, { v: 2 }));
    }
    expect(await fx.storage.list(mountStoragePrefix(gone))).toEqual(["a", "b/", "data/", "metadata/"]);
    await tx((t) => fx.mounts.disable(t, "gone"));
    expect(await fx.storage.list(mountStoragePrefix(gone))).toEqual([]);
    expect(await fx.storage.list(mountStoragePrefix(kept))).toEqual(["a", "b/", "data/", "metadata/"]);
    // A new mount at the same path starts empty (a new uuid, so a new prefix).
    const again = await tx((t) => fx.mounts.enable(t, "gone", { type: "kv" }));
    expect(again.uuid).not.toBe(gone.uuid);
    expect((await new KvV1Engine(mountStoragePrefix(again)).read(fx.storage, "a")).status).toBe(404);
  });
});
