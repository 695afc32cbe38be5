import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { wrapStorage } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CacheCoherence } from "../../src/cache/cache-coherence.js";
import { CachedRecord } from "../../src/mounts/cached-record.js";
import { POLICY_KEY_PREFIX, PolicyStore } from "../../src/policy/policy-store.js";

// The caches of decoded records (mount tables, policies) driven by the change feed's view:
// cached until their key changes, never by time, and not at all while the feed is not live.

/** A coherence source the test drives (what StorageCache does from the feed). */
class DrivenCoherence implements CacheCoherence {
  coherent = true;
  readonly #listeners = new Set<(keys: readonly string[] | null) => void>();
  onInvalidate(listener: (keys: readonly string[] | null) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  changed(keys: readonly string[] | null): void {
    for (const listener of this.#listeners) listener(keys);
  }
}

let dir: string;
let backend: SqliteBackend;
let reads: number;
let storage: StorageBackend;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "egide-coherence-"));
  // A file, so a read outside a transaction runs while the transaction is open.
  backend = SqliteBackend.open({ path: join(dir, "egide.db") });
  reads = 0;
  storage = wrapStorage(backend, {
    get: (key) => {
      reads += 1;
      return backend.get(key);
    },
  });
});

afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("CachedRecord with the change feed", () => {
  it("keeps its copy past cacheMs until its key changes, and reads storage while the feed is not live", async () => {
    const coherence = new DrivenCoherence();
    let now = 0;
    const record = new CachedRecord(storage, "core/mounts", (raw) => raw?.toString() ?? null, { cacheMs: 1000, now: () => now, coherence });
    await backend.put("core/mounts", Buffer.from("v1"));
    expect(await record.read()).toBe("v1");
    now += 60_000;
    expect(await record.read()).toBe("v1");
    expect(reads).toBe(1);
    coherence.changed(["core/other"]);
    expect(await record.read()).toBe("v1");
    expect(reads).toBe(1);
    await backend.put("core/mounts", Buffer.from("v2"));
    coherence.changed(["core/mounts"]);
    expect(await record.read()).toBe("v2");
    expect(reads).toBe(2);
    coherence.changed(null);
    expect(await record.read()).toBe("v2");
    expect(reads).toBe(3);
    coherence.coherent = false;
    await record.read();
    await record.read();
    expect(reads).toBe(5);
  });
});

describe("PolicyStore with the change feed", () => {
  it("caches a policy until the feed says it changed, whoever changed it", async () => {
    const coherence = new DrivenCoherence();
    let now = 0;
    const policies = new PolicyStore(storage, { coherence, now: () => now });
    const other = new PolicyStore(backend);
    await backend.transaction((tx) => other.write(tx, "ops", 'path "a/*" { capabilities = ["read"] }').then(() => undefined));
    expect((await policies.get("ops"))?.raw).toContain("a/*");
    now += 3_600_000;
    expect((await policies.get("ops"))?.raw).toContain("a/*");
    expect(reads).toBe(1);
    // Another instance rewrites it: the old text is served until the feed tells.
    await backend.transaction((tx) => other.write(tx, "ops", 'path "b/*" { capabilities = ["read"] }').then(() => undefined));
    expect((await policies.get("ops"))?.raw).toContain("a/*");
    coherence.changed([`${POLICY_KEY_PREFIX}ops`]);
    expect((await policies.get("ops"))?.raw).toContain("b/*");
    expect(reads).toBe(2);
    // Deleted elsewhere: gone once the feed tells.
    await backend.transaction((tx) => other.delete(tx, "ops"));
    coherence.changed([`${POLICY_KEY_PREFIX}ops`]);
    expect(await policies.get("ops")).toBeNull();
    // Not live: every read goes to storage.
    coherence.coherent = false;
    const before = reads;
    await policies.get("ops");
    await policies.get("ops");
    expect(reads).toBe(before + 2);
  });

  it("a change made through the store is seen at once, even with a read racing its transaction", async () => {
    const coherence = new DrivenCoherence();
    const policies = new PolicyStore(storage, { coherence });
    await backend.transaction(async (tx) => {
      await policies.write(tx, "race", 'path "x/*" { capabilities = ["read"] }');
      // A read before the commit sees (and may keep) the committed state: none.
      expect(await policies.get("race")).toBeNull();
    });
    // What the feed delivers after the commit drops what the racing read kept.
    coherence.changed([`${POLICY_KEY_PREFIX}race`]);
    expect((await policies.get("race"))?.raw).toContain("x/*");
  });
});
