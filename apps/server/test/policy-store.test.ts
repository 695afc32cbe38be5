import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VaultError } from "../src/http/vault-error.js";
import { DEFAULT_POLICY_HCL } from "../src/policy/default-policies.js";
import { parsePolicy } from "../src/policy/parse-policy.js";
import { POLICY_KEY_PREFIX, PolicyStore } from "../src/policy/policy-store.js";

const READ_SECRET = `path "secret/*" {\n  capabilities = ["read", "list"]\n}\n`;
const WRITE_SECRET = `path "secret/*" {\n  capabilities = ["create", "update"]\n}\n`;

/** The status of the VaultError `promise` rejects with, and its message. */
async function vaultError(promise: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VaultError);
    return { status: (error as VaultError).status, message: (error as VaultError).errors.join("; ") };
  }
  throw new Error("expected a VaultError");
}

describe("PolicyStore over SQLite (:memory:)", () => {
  let storage: SqliteBackend;
  let store: PolicyStore;

  beforeEach(() => {
    storage = SqliteBackend.open({ path: ":memory:" });
    store = new PolicyStore(storage);
  });
  afterEach(async () => {
    await storage.close();
  });

  it("writes a policy, stores {name, raw, format} at sys/policy/<name>, and reads it back", async () => {
    const written = await storage.transaction((tx) => store.write(tx, "readers", READ_SECRET));
    expect(written.name).toBe("readers");
    const stored = await storage.get(`${POLICY_KEY_PREFIX}readers`);
    expect(JSON.parse(stored?.toString("utf8") ?? "null")).toEqual({ name: "readers", raw: READ_SECRET, format: "hcl" });
    const read = await store.get("readers");
    expect(read?.name).toBe("readers");
    // Names are canonical (the request pipeline canonicalises them): others name no policy.
    expect(await store.get("READERS")).toBeNull();
    expect(read?.raw).toBe(READ_SECRET);
    expect(read?.rules).toEqual([{ path: "secret/*", capabilities: ["read", "list"], prefix: true, segmentWildcards: false }]);
  });

  it("keeps a JSON policy's text and format", async () => {
    const text = JSON.stringify({ path: { "kv/*": { capabilities: ["read"] } } });
    await storage.transaction((tx) => store.write(tx, "j", text));
    const read = await store.get("j");
    expect(read?.raw).toBe(text);
    expect(read?.format).toBe("json");
  });

  it("accepts an already parsed policy", async () => {
    const parsed = await parsePolicy("x", READ_SECRET);
    await storage.transaction((tx) => store.write(tx, "x", parsed));
    expect((await store.get("x"))?.raw).toBe(READ_SECRET);
  });

  it("returns null for an unknown or invalid name", async () => {
    expect(await store.get("nope")).toBeNull();
    expect(await store.get("bad/name")).toBeNull();
    expect(await store.get("")).toBeNull();
  });

  it("refuses invalid text without writing anything", async () => {
    const error = await vaultError(storage.transaction((tx) => store.write(tx, "p", `path "a" { capabilities = ["bogus"] }`)));
    expect(error).toEqual({ status: 400, message: 'failed to parse policy: path "a": invalid capability "bogus"' });
    expect(await storage.get(`${POLICY_KEY_PREFIX}p`)).toBeNull();
    expect(await store.get("p")).toBeNull();
  });

  it("refuses invalid names", async () => {
    for (const name of ["a/b", "a b", "ü", "x".repeat(129), "", "Readers", " p"]) {
      const error = await vaultError(storage.transaction((tx) => store.write(tx, name, READ_SECRET)));
      expect(error.status, name).toBe(400);
    }
    expect((await store.list()).sort()).toEqual(["default", "root"]);
  });

  it("overwrites a policy; the change is seen at once", async () => {
    await storage.transaction((tx) => store.write(tx, "p", READ_SECRET));
    expect((await store.get("p"))?.raw).toBe(READ_SECRET);
    await storage.transaction((tx) => store.write(tx, "p", WRITE_SECRET));
    expect((await store.get("p"))?.raw).toBe(WRITE_SECRET);
  });

  it("deletes a policy; deleting an absent one is not an error", async () => {
    await storage.transaction((tx) => store.write(tx, "p", READ_SECRET));
    expect(await store.get("p")).not.toBeNull();
    await storage.transaction((tx) => store.delete(tx, "p"));
    expect(await store.get("p")).toBeNull();
    expect(await storage.get(`${POLICY_KEY_PREFIX}p`)).toBeNull();
    await storage.transaction((tx) => store.delete(tx, "never-existed"));
  });

  it("root: implicit, never stored, cannot be written or deleted", async () => {
    const root = await store.get("root");
    expect(root).toMatchObject({ name: "root", rules: [], raw: "" });
    expect(await vaultError(storage.transaction((tx) => store.write(tx, "root", READ_SECRET)))).toEqual({
      status: 400,
      message: 'cannot update "root" policy',
    });
    expect(await vaultError(storage.transaction((tx) => store.delete(tx, "root")))).toEqual({
      status: 400,
      message: 'cannot delete "root" policy',
    });
    expect((await vaultError(storage.transaction((tx) => store.write(tx, " ROOT ", READ_SECRET)))).status).toBe(400);
    expect(await vaultError(storage.transaction((tx) => store.delete(tx, "Root")))).toEqual({
      status: 400,
      message: 'invalid policy name "Root": policy names are lower-case',
    });
    expect(await storage.get(`${POLICY_KEY_PREFIX}root`)).toBeNull();
  });

  it("default: exists without being stored, can be overwritten, cannot be deleted", async () => {
    const builtIn = await store.get("default");
    expect(builtIn?.raw).toBe(DEFAULT_POLICY_HCL);
    expect(await storage.get(`${POLICY_KEY_PREFIX}default`)).toBeNull();

    const acl = await store.acl(["default"]);
    expect(acl.allows("auth/token/lookup-self", "read")).toBe(true);
    expect(acl.allows("auth/token/renew-self", "update")).toBe(true);
    expect(acl.allows("auth/token/revoke-self", "update")).toBe(true);
    expect(acl.allows("sys/capabilities-self", "update")).toBe(true);
    expect(acl.allows("secret/x", "read")).toBe(false);

    expect(await vaultError(storage.transaction((tx) => store.delete(tx, "default")))).toEqual({
      status: 400,
      message: "cannot delete default policy",
    });

    await storage.transaction((tx) => store.write(tx, "default", READ_SECRET));
    expect((await store.get("default"))?.raw).toBe(READ_SECRET);
    const replaced = await store.acl(["default"]);
    expect(replaced.allows("secret/x", "read")).toBe(true);
    expect(replaced.allows("auth/token/lookup-self", "read")).toBe(false);
  });

  it("lists every policy sorted, default and root always included", async () => {
    expect(await store.list()).toEqual(["default", "root"]);
    await storage.transaction(async (tx) => {
      await store.write(tx, "zeta", READ_SECRET);
      await store.write(tx, "alpha", READ_SECRET);
      await store.write(tx, "default", READ_SECRET);
      await store.write(tx, "m.i-d_1", READ_SECRET);
    });
    expect(await store.list()).toEqual(["alpha", "default", "m.i-d_1", "root", "zeta"]);
    await storage.transaction((tx) => store.delete(tx, "zeta"));
    expect(await store.list()).toEqual(["alpha", "default", "m.i-d_1", "root"]);
  });

  it("a rolled-back write leaves nothing behind", async () => {
    await expect(
      storage.transaction(async (tx) => {
        await store.write(tx, "p", READ_SECRET);
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(await store.get("p")).toBeNull();
    expect(await store.list()).toEqual(["default", "root"]);
  });

  it("builds ACLs: union of the policies, unknown (and non-canonical) names ignored", async () => {
    await storage.transaction(async (tx) => {
      await store.write(tx, "readers", READ_SECRET);
      await store.write(tx, "writers", WRITE_SECRET);
    });
    const acl = await store.acl(["writers", "missing", "readers", "readers"]);
    expect(acl.isRoot).toBe(false);
    for (const capability of ["read", "list", "create", "update"] as const) expect(acl.allows("secret/x", capability)).toBe(true);
    expect(acl.allows("secret/x", "delete")).toBe(false);
    expect((await store.acl(["missing"])).allows("secret/x", "read")).toBe(false);
    expect((await store.acl(["Readers"])).allows("secret/x", "read")).toBe(false);
    expect((await store.acl([])).allows("secret/x", "read")).toBe(false);
  });

  it("root alone gives the root ACL; root with other policies is refused, as in Vault", async () => {
    expect((await store.acl(["root"])).isRoot).toBe(true);
    expect((await store.acl(["root", "root"])).isRoot).toBe(true);
    await expect(store.acl(["root", "default"])).rejects.toThrow(/other policies present along with root/);
  });

  it("reuses the ACL while its policies are unchanged, and rebuilds it after a change", async () => {
    await storage.transaction((tx) => store.write(tx, "readers", READ_SECRET));
    const first = await store.acl(["readers", "default"]);
    expect(await store.acl(["default", "readers"])).toBe(first);
    await storage.transaction((tx) => store.write(tx, "readers", WRITE_SECRET));
    const second = await store.acl(["readers", "default"]);
    expect(second).not.toBe(first);
    expect(second.allows("secret/x", "update")).toBe(true);
    expect(second.allows("secret/x", "read")).toBe(false);
  });

  it("reads the storage at most once per cache period for concurrent lookups", async () => {
    await storage.transaction((tx) => store.write(tx, "p", READ_SECRET));
    store.invalidate();
    let reads = 0;
    const original = storage.get.bind(storage);
    storage.get = async (key: string) => {
      if (key.startsWith(POLICY_KEY_PREFIX)) reads++;
      return original(key);
    };
    // The local write above keeps "p" uncached for cacheMs; use a fresh store.
    const fresh = new PolicyStore(storage);
    const results = await Promise.all(Array.from({ length: 20 }, () => fresh.get("p")));
    expect(new Set(results).size).toBe(1);
    expect(reads).toBe(1);
    await fresh.get("p");
    expect(reads).toBe(1);
  });
});

describe("PolicyStore: the cache across two server instances (one SQLite file)", () => {
  let dir: string;
  let first: SqliteBackend;
  let second: SqliteBackend;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "egide-policy-store-"));
    const path = join(dir, "egide.db");
    first = SqliteBackend.open({ path });
    second = SqliteBackend.open({ path });
  });
  afterEach(async () => {
    await first.close();
    await second.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a change made by the other instance is seen within cacheMs", async () => {
    const cacheMs = 100;
    const a = new PolicyStore(first, { cacheMs });
    const b = new PolicyStore(second, { cacheMs });

    await first.transaction((tx) => a.write(tx, "shared", READ_SECRET));
    expect((await b.get("shared"))?.raw).toBe(READ_SECRET);
    expect((await b.acl(["shared"])).allows("secret/x", "read")).toBe(true);

    // A writes a new version: B may still answer the cached one, but only until cacheMs.
    await first.transaction((tx) => a.write(tx, "shared", WRITE_SECRET));
    expect((await a.get("shared"))?.raw).toBe(WRITE_SECRET);
    await sleep(cacheMs + 20);
    expect((await b.get("shared"))?.raw).toBe(WRITE_SECRET);
    const acl = await b.acl(["shared"]);
    expect(acl.allows("secret/x", "update")).toBe(true);
    expect(acl.allows("secret/x", "read")).toBe(false);

    // A deletion too.
    await first.transaction((tx) => a.delete(tx, "shared"));
    await sleep(cacheMs + 20);
    expect(await b.get("shared")).toBeNull();
    expect((await b.acl(["shared"])).allows("secret/x", "update")).toBe(false);
    expect(await b.list()).toEqual(["default", "root"]);
  });

  it("serves from the cache within cacheMs (the other instance's change is not read back at once)", async () => {
    const a = new PolicyStore(first, { cacheMs: 60_000 });
    const b = new PolicyStore(second, { cacheMs: 60_000 });
    await first.transaction((tx) => a.write(tx, "shared", READ_SECRET));
    expect((await b.get("shared"))?.raw).toBe(READ_SECRET);
    await first.transaction((tx) => a.write(tx, "shared", WRITE_SECRET));
    // Cached on B: still the old text, until the cache period ends or B is told.
    expect((await b.get("shared"))?.raw).toBe(READ_SECRET);
    b.invalidate("shared");
    expect((await b.get("shared"))?.raw).toBe(WRITE_SECRET);
  });

  it("with cacheMs 0, every read goes to the storage", async () => {
    const a = new PolicyStore(first, { cacheMs: 0 });
    const b = new PolicyStore(second, { cacheMs: 0 });
    await first.transaction((tx) => a.write(tx, "shared", READ_SECRET));
    expect((await b.get("shared"))?.raw).toBe(READ_SECRET);
    await first.transaction((tx) => a.write(tx, "shared", WRITE_SECRET));
    expect((await b.get("shared"))?.raw).toBe(WRITE_SECRET);
  });

  it("the built-in default is replaced on the other instance when written", async () => {
    const a = new PolicyStore(first, { cacheMs: 100 });
    const b = new PolicyStore(second, { cacheMs: 100 });
    expect((await b.get("default"))?.raw).toBe(DEFAULT_POLICY_HCL);
    await first.transaction((tx) => a.write(tx, "default", READ_SECRET));
    await sleep(120);
    expect((await b.get("default"))?.raw).toBe(READ_SECRET);
  });
});

describe("PolicyStore: local changes and the cache (controlled clock)", () => {
  let storage: SqliteBackend;
  afterEach(async () => {
    await storage.close();
  });

  it("a read racing an uncommitted local write does not pin the old text in the cache", async () => {
    // A file database: plain reads use their own connection, so they run while a write
    // transaction is open (as on PostgreSQL).
    const dir = mkdtempSync(join(tmpdir(), "egide-policy-race-"));
    storage = SqliteBackend.open({ path: join(dir, "egide.db") });
    try {
      let now = 1_000;
      const store = new PolicyStore(storage, { cacheMs: 1000, now: () => now });
      await storage.transaction((tx) => store.write(tx, "p", READ_SECRET));
      now += 5000;
      expect((await store.get("p"))?.raw).toBe(READ_SECRET);

      // The new text is written but not committed; meanwhile a read fetches the committed text.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let written!: () => void;
      const wrote = new Promise<void>((resolve) => (written = resolve));
      const transaction = storage.transaction(async (tx) => {
        await store.write(tx, "p", WRITE_SECRET);
        written();
        await held;
      });
      await wrote;
      expect((await store.get("p"))?.raw).toBe(READ_SECRET);
      release();
      await transaction;
      // Same clock (well within cacheMs of that read): the committed text, not the cached old one.
      expect((await store.get("p"))?.raw).toBe(WRITE_SECRET);
    } finally {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("entries expire cacheMs after the read that filled them", async () => {
    storage = SqliteBackend.open({ path: ":memory:" });
    let now = 0;
    const writer = new PolicyStore(storage, { cacheMs: 1000, now: () => now });
    const reader = new PolicyStore(storage, { cacheMs: 1000, now: () => now });
    await storage.transaction((tx) => writer.write(tx, "p", READ_SECRET));
    expect((await reader.get("p"))?.raw).toBe(READ_SECRET);
    await storage.transaction((tx) => writer.write(tx, "p", WRITE_SECRET));
    now = 999;
    expect((await reader.get("p"))?.raw).toBe(READ_SECRET);
    now = 1000;
    expect((await reader.get("p"))?.raw).toBe(WRITE_SECRET);
  });
});
