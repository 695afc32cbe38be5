import { describe, expect, it } from "vitest";
import { KvV2Engine } from "../src/kv/kv-v2-engine.js";
import { MOUNT_TABLE_KEY, MountTable, PURGE_BATCH, mountPath, mountStoragePrefix, validateMountPath } from "../src/mounts/mount-table.js";
import { useMemoryMountTable } from "./support/memory-mount-table.js";
import { vaultError } from "./support/vault-error.js";

const fx = useMemoryMountTable();
const { tx } = fx;
const KV2 = { type: "kv", options: { version: "2" } };

describe("ensureDefault", () => {
  it("mounts secret/ as KV v2 on a fresh storage, once", async () => {
    expect(await fx.mounts.ensureDefault()).toBe(true);
    const list = await fx.mounts.list();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      path: "secret/",
      type: "kv",
      options: { version: "2" },
      description: "key/value secret storage",
      local: false,
      seal_wrap: false,
    });
    expect(list[0]?.accessor).toMatch(/^kv_[0-9a-f]{8}$/);
    expect(list[0]?.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await fx.mounts.ensureDefault()).toBe(false);
    expect(await fx.mounts.list()).toHaveLength(1);
  });

  it("leaves an existing table alone, even one emptied by disabling every mount", async () => {
    await fx.mounts.ensureDefault();
    await tx((t) => fx.mounts.disable(t, "secret"));
    expect(await fx.mounts.ensureDefault()).toBe(false);
    expect(await fx.mounts.list()).toEqual([]);
  });

  it("stores the table as JSON at core/mounts", async () => {
    await fx.mounts.ensureDefault();
    const stored = JSON.parse(((await fx.storage.get(MOUNT_TABLE_KEY)) as Buffer).toString("utf8"));
    expect(stored.entries).toHaveLength(1);
    expect(stored.entries[0].path).toBe("secret/");
  });
});

describe("enable", () => {
  it("adds the trailing slash (a leading one is refused, never stripped) and gives each mount its own uuid and accessor", async () => {
    await expect(tx((t) => fx.mounts.enable(t, "/team/kv", KV2))).rejects.toThrow(/invalid mount path/);
    const a = await tx((t) => fx.mounts.enable(t, "team/kv", { ...KV2, description: "team secrets" }));
    const b = await tx((t) => fx.mounts.enable(t, "other/", { type: "kv-v2" }));
    expect(a.path).toBe("team/kv/");
    expect(a.description).toBe("team secrets");
    expect(b.path).toBe("other/");
    expect(b.options).toEqual({ version: "2" });
    expect(a.uuid).not.toBe(b.uuid);
    expect(a.accessor).not.toBe(b.accessor);
    expect((await fx.mounts.list()).map((m) => m.path)).toEqual(["other/", "team/kv/"]);
  });

  it("accepts version 2 as a number too", async () => {
    expect((await tx((t) => fx.mounts.enable(t, "n", { type: "kv", options: { version: 2 } }))).options).toEqual({ version: "2" });
  });

  it("refuses other types, versions other than 1 and 2, and a version contradicting the type alias, saying they are unsupported", async () => {
    for (const input of [
      { type: "kv", options: { version: "3" } },
      { type: "aws" },
      { type: "kv-v2", options: { version: "1" } },
      { type: "kv-v1", options: { version: "2" } },
    ]) {
      const error = await vaultError(tx((t) => fx.mounts.enable(t, "x", input)));
      expect(error.status).toBe(400);
      expect(error.errors[0]).toMatch(/unsupported/);
      expect(error.errors[0]).toContain("version 2");
    }
    expect((await vaultError(tx((t) => fx.mounts.enable(t, "x", {})))).status).toBe(400);
    expect((await vaultError(tx((t) => fx.mounts.enable(t, "x", { type: "kv", options: "2" })))).status).toBe(400);
    expect(await fx.mounts.list()).toEqual([]);
  });

  it("refuses reserved prefixes", async () => {
    for (const path of ["sys", "sys/", "sys/foo", "auth/x", "cubbyhole", "identity/", "audit"]) {
      const error = await vaultError(tx((t) => fx.mounts.enable(t, path, KV2)));
      expect(error.status).toBe(400);
      expect(error.errors[0]).toContain("reserved");
    }
    // A path that merely starts with the same letters is fine.
    expect((await tx((t) => fx.mounts.enable(t, "system", KV2))).path).toBe("system/");
  });

  it("refuses invalid paths", async () => {
    for (const path of ["", "/", "a//b", "./x", "a/../b", "a\u0001"]) {
      expect((await vaultError(tx((t) => fx.mounts.enable(t, path, KV2)))).status).toBe(400);
    }
  });

  it("refuses overlapping mounts, either way", async () => {
    await tx((t) => fx.mounts.enable(t, "team/", KV2));
    const same = await vaultError(tx((t) => fx.mounts.enable(t, "team", KV2)));
    expect(same.status).toBe(400);
    expect(same.errors).toEqual(["path is already in use at team/"]);
    expect((await vaultError(tx((t) => fx.mounts.enable(t, "team/kv", KV2)))).errors).toEqual(["path is already in use at team/"]);
    await tx((t) => fx.mounts.enable(t, "deep/nested/kv", KV2));
    expect((await vaultError(tx((t) => fx.mounts.enable(t, "deep", KV2)))).errors).toEqual(["path is already in use at deep/nested/kv/"]);
    // A sibling that shares a prefix of letters but not of segments does not overlap.
    expect((await tx((t) => fx.mounts.enable(t, "teams", KV2))).path).toBe("teams/");
  });
});

describe("find", () => {
  it("matches the longest mount prefix and answers the rest", async () => {
    await tx((t) => fx.mounts.enable(t, "secret", KV2));
    await tx((t) => fx.mounts.enable(t, "team/kv", KV2));
    await tx((t) => fx.mounts.enable(t, "team/kv2", KV2));
    expect(await fx.mounts.find("secret/data/app")).toMatchObject({ mount: { path: "secret/" }, rest: "data/app" });
    expect(await fx.mounts.find("team/kv/metadata/")).toMatchObject({ mount: { path: "team/kv/" }, rest: "metadata/" });
    expect(await fx.mounts.find("team/kv2/config")).toMatchObject({ mount: { path: "team/kv2/" }, rest: "config" });
    expect(await fx.mounts.find("secret")).toMatchObject({ mount: { path: "secret/" }, rest: "" });
    expect(await fx.mounts.find("secret/")).toMatchObject({ mount: { path: "secret/" }, rest: "" });
    expect(await fx.mounts.find("secrets/data/x")).toBeNull();
    expect(await fx.mounts.find("team/other")).toBeNull();
    expect(await fx.mounts.find("")).toBeNull();
  });
});

describe("disable", () => {
  it("removes the mount and every key of its data, and nothing of other mounts", async () => {
    const doomed = await tx((t) => fx.mounts.enable(t, "doomed", KV2));
    const kept = await tx((t) => fx.mounts.enable(t, "kept", KV2));
    const doomedEngine = new KvV2Engine(mountStoragePrefix(doomed));
    const keptEngine = new KvV2Engine(mountStoragePrefix(kept));
    // More keys than one listing batch, in nested folders, plus config.
    await tx(async (t) => {
      for (let i = 0; i < PURGE_BATCH + 20; i++) await doomedEngine.write(t, `flat/${String(i).padStart(4, "0")}`, { i });
      for (let i = 0; i < 30; i++) await doomedEngine.write(t, `a/b/c/${i}`, { i });
      await doomedEngine.writeConfig(t, { max_versions: 3 });
      await keptEngine.write(t, "stay", { here: true });
    });
    expect((await fx.storage.list(mountStoragePrefix(doomed))).length).toBeGreaterThan(0);

    const removed = await tx((t) => fx.mounts.disable(t, "doomed/"));
    expect(removed?.uuid).toBe(doomed.uuid);
    expect((await fx.mounts.list()).map((m) => m.path)).toEqual(["kept/"]);
    const left: string[] = [];
    for await (const entry of fx.storage.scan(mountStoragePrefix(doomed))) left.push(entry.key);
    expect(left).toEqual([]);
    expect(await fx.storage.list("logical/")).toEqual([`${kept.uuid}/`]);
    expect(((await keptEngine.readData(fx.storage, "stay")) as { data: { data: unknown } }).data.data).toEqual({ here: true });
  });

  it("of a path with no mount answers null and changes nothing", async () => {
    await fx.mounts.ensureDefault();
    expect(await tx((t) => fx.mounts.disable(t, "nothing"))).toBeNull();
    expect(await fx.mounts.list()).toHaveLength(1);
  });

  it("refuses reserved paths", async () => {
    expect((await vaultError(tx((t) => fx.mounts.disable(t, "sys")))).status).toBe(400);
  });

  it("rolls back with its transaction: the mount and its data stay", async () => {
    const mount = await tx((t) => fx.mounts.enable(t, "keep", KV2));
    const engine = new KvV2Engine(mountStoragePrefix(mount));
    await tx((t) => engine.write(t, "k", { a: 1 }));
    await expect(
      tx(async (t) => {
        await fx.mounts.disable(t, "keep");
        throw new Error("audit failed");
      }),
    ).rejects.toThrow("audit failed");
    fx.mounts.invalidate();
    expect((await fx.mounts.list()).map((m) => m.path)).toEqual(["keep/"]);
    expect((await engine.readData(fx.storage, "k")).status).toBe(200);
  });
});

describe("tune", () => {
  it("changes the description; only version 2 options", async () => {
    await fx.mounts.ensureDefault();
    expect((await tx((t) => fx.mounts.tune(t, "secret", { description: "new" }))).description).toBe("new");
    expect((await fx.mounts.get("secret/"))?.description).toBe("new");
    expect((await vaultError(tx((t) => fx.mounts.tune(t, "secret", { options: { version: "1" } })))).status).toBe(400);
    expect((await vaultError(tx((t) => fx.mounts.tune(t, "absent", { description: "x" })))).status).toBe(400);
  });
});

describe("cache", () => {
  it("serves the cached table for cacheMs, then sees another instance's changes", async () => {
    let clock = 0;
    const local = new MountTable(fx.storage, { cacheMs: 1000, now: () => clock });
    const other = new MountTable(fx.storage);
    await local.ensureDefault();
    expect(await local.find("secret/x")).not.toBeNull();
    await tx((t) => other.enable(t, "fresh", KV2));
    await tx((t) => other.disable(t, "secret"));
    clock += 999;
    expect((await local.list()).map((m) => m.path)).toEqual(["secret/"]);
    clock += 1;
    expect((await local.list()).map((m) => m.path)).toEqual(["fresh/"]);
    expect(await local.find("secret/x")).toBeNull();
  });

  it("is invalidated by local changes", async () => {
    const local = new MountTable(fx.storage, { cacheMs: 60_000 });
    await local.ensureDefault();
    expect(await local.list()).toHaveLength(1);
    await tx((t) => local.enable(t, "more", KV2));
    expect(await local.list()).toHaveLength(2);
    await tx((t) => local.disable(t, "more"));
    expect(await local.list()).toHaveLength(1);
  });

  it("reads storage once for concurrent lookups", async () => {
    await fx.mounts.ensureDefault();
    let reads = 0;
    const counting = new Proxy(fx.storage, {
      get(target, property, receiver) {
        if (property === "get") {
          return (key: string) => {
            reads += 1;
            return target.get(key);
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const table = new MountTable(counting);
    await Promise.all(Array.from({ length: 10 }, () => table.find("secret/data/x")));
    expect(reads).toBe(1);
  });

  it("isMounted checks the table inside a transaction", async () => {
    await fx.mounts.ensureDefault();
    const mount = (await fx.mounts.get("secret")) as NonNullable<Awaited<ReturnType<MountTable["get"]>>>;
    expect(await tx((t) => fx.mounts.isMounted(t, mount))).toBe(true);
    await tx((t) => fx.mounts.disable(t, "secret"));
    expect(await tx((t) => fx.mounts.isMounted(t, mount))).toBe(false);
  });
});

describe("mountPath and validateMountPath", () => {
  it("adds the trailing slash and changes nothing else", () => {
    expect(mountPath("secret")).toBe("secret/");
    expect(mountPath("a/b/")).toBe("a/b/");
    // Never normalised: a non-canonical spelling stays what it is, and is refused below.
    expect(mountPath(" team")).toBe(" team/");
  });

  it.each(["/team", " team", "team ", "\tteam", "a//b", "a/./b", "a/../b", "te\u0000am", "team\u00a0"])(
    "refuses %j instead of normalising it",
    (path) => {
      expect(() => validateMountPath(path)).toThrow(/invalid mount path/);
    },
  );
});
