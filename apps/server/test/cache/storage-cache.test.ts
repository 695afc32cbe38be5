import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { wrapStorage } from "@egide/storage-core";
import type { ChangeFeedListener, StorageBackend } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StorageCache } from "../../src/cache/storage-cache.js";

// The coherent cache over real SQLite files: what reaches the database is counted by a
// pass-through decorator, so each test can say how many reads the cache saved, and a second
// backend object on the same file plays the other server instance.

let dir: string;
let backend: SqliteBackend;
const opened: StorageBackend[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MiB = 1024 * 1024;
// A real collection before each heap reading, so the comparison is of what is held.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
/** What the process holds once garbage is collected (Buffers' memory is freed a cycle or two later). */
async function heldBytes(): Promise<number> {
  for (let round = 0; round < 4; round += 1) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** `inner` with its point reads counted. */
function counted(inner: StorageBackend) {
  const counts = { get: 0, getMany: 0, exists: 0 };
  const storage = wrapStorage(inner, {
    get: (key) => {
      counts.get += 1;
      return inner.get(key);
    },
    getMany: (keys) => {
      counts.getMany += 1;
      return (inner.getMany as NonNullable<StorageBackend["getMany"]>).call(inner, keys);
    },
    exists: (key) => {
      counts.exists += 1;
      return inner.exists(key);
    },
  });
  return { storage, counts };
}

function open(name = "egide.db"): SqliteBackend {
  const opened_ = SqliteBackend.open({ path: join(dir, name) });
  opened.push(opened_);
  return opened_;
}

async function until(check: () => boolean | Promise<boolean>, limitMs = 2000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > limitMs) throw new Error("condition not met in time");
    await sleep(5);
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "egide-cache-"));
  backend = open();
});

afterEach(async () => {
  for (const one of opened.splice(0)) await one.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("StorageCache over SQLite", () => {
  it("answers a repeated read from memory, and a write through it is seen by the next read", async () => {
    const { storage, counts } = counted(backend);
    const cache = new StorageCache(storage, { maxBytes: MiB });
    await until(() => cache.coherent);
    await cache.storage.put("a", Buffer.from("one"));
    expect((await cache.storage.get("a"))?.toString()).toBe("one");
    expect((await cache.storage.get("a"))?.toString()).toBe("one");
    expect(counts.get).toBe(1);
    await cache.storage.put("a", Buffer.from("two"));
    expect((await cache.storage.get("a"))?.toString()).toBe("two");
    expect(counts.get).toBe(2);
    // Absent keys are not kept: made-up tokens sent by anyone must not fill the cache.
    expect(await cache.storage.get("none")).toBeNull();
    expect(await cache.storage.get("none")).toBeNull();
    expect(await cache.storage.exists("none")).toBe(false);
    expect(counts.get).toBe(4);
    expect(counts.exists).toBe(1);
    expect(cache.status().entries).toBe(1);
    cache.stop();
  });

  it("drops an entry when another backend object on the same file changes it", async () => {
    const cache = new StorageCache(backend, { maxBytes: MiB });
    await until(() => cache.coherent);
    await backend.put("k", Buffer.from("old"));
    expect((await cache.storage.get("k"))?.toString()).toBe("old");
    const other = open();
    await other.put("k", Buffer.from("new"));
    await until(async () => (await cache.storage.get("k"))?.toString() === "new", 1000);
    cache.stop();
  });

  it("writes in a transaction invalidate their keys; transactions never read from the cache", async () => {
    const { storage, counts } = counted(backend);
    const cache = new StorageCache(storage, { maxBytes: MiB });
    await until(() => cache.coherent);
    await cache.storage.put("t", Buffer.from("1"));
    expect((await cache.storage.get("t"))?.toString()).toBe("1");
    const inside = await cache.storage.transaction(async (tx) => {
      await tx.put("t", Buffer.from("2"));
      return (await tx.get("t"))?.toString();
    });
    expect(inside).toBe("2");
    expect((await cache.storage.get("t"))?.toString()).toBe("2");
    // A rolled-back write leaves the committed value, read again from storage.
    await expect(
      cache.storage.transaction(async (tx) => {
        await tx.put("t", Buffer.from("3"));
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const before = counts.get;
    expect((await cache.storage.get("t"))?.toString()).toBe("2");
    expect(counts.get).toBe(before + 1);
    cache.stop();
  });

  it("does not keep a read that was on its way to storage when its key changed", async () => {
    let release: () => void = () => undefined;
    let gate = Promise.resolve();
    const slow = wrapStorage(backend, {
      get: async (key) => {
        const value = await backend.get(key);
        await gate;
        return value;
      },
    });
    const cache = new StorageCache(slow, { maxBytes: MiB });
    await until(() => cache.coherent);
    await backend.put("race", Buffer.from("old"));
    gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const reading = cache.storage.get("race");
    await sleep(20);
    // The read has its (old) value in hand; the change commits before it returns.
    await backend.put("race", Buffer.from("new"));
    release();
    expect((await reading)?.toString()).toBe("old");
    gate = Promise.resolve();
    expect((await cache.storage.get("race"))?.toString()).toBe("new");
    cache.stop();
  });

  it("serves nothing while the feed is not live, and starts empty when it is live again", async () => {
    // The feed's liveness is driven by the test; the storage beneath is the real file.
    let listener: ChangeFeedListener | undefined;
    const controlled = wrapStorage(backend, {
      subscribeChanges: (subscriber) => {
        listener = subscriber;
        return { live: false, close: () => undefined };
      },
    });
    const { storage, counts } = counted(controlled);
    const cache = new StorageCache(storage, { maxBytes: MiB });
    expect(cache.coherent).toBe(false);
    expect(cache.status().feed).toBe("not_live");
    await backend.put("x", Buffer.from("1"));
    await cache.storage.get("x");
    await cache.storage.get("x");
    expect(counts.get).toBe(2);
    listener?.live(true);
    expect(cache.coherent).toBe(true);
    await cache.storage.get("x");
    await cache.storage.get("x");
    expect(counts.get).toBe(3);
    // The feed drops: from now on every read goes to storage, and what was held is gone.
    listener?.live(false);
    expect(cache.status()).toMatchObject({ serving: false, entries: 0, bytes: 0 });
    // A change made meanwhile is missed by the feed, but reads go to storage.
    await backend.put("x", Buffer.from("2"));
    expect((await cache.storage.get("x"))?.toString()).toBe("2");
    expect(counts.get).toBe(4);
    listener?.live(true);
    expect((await cache.storage.get("x"))?.toString()).toBe("2");
    expect(counts.get).toBe(5);
    // A change of unknown keys flushes everything.
    listener?.change({ position: 1, keys: null, committedAt: Date.now() });
    expect(cache.status().entries).toBe(0);
    cache.stop();
  });

  it("is a pass-through when disabled, or when the backend has no feed", async () => {
    const { storage, counts } = counted(backend);
    const disabled = new StorageCache(storage, { maxBytes: MiB, disabled: true });
    await backend.put("p", Buffer.from("v"));
    await disabled.storage.get("p");
    await disabled.storage.get("p");
    expect(counts.get).toBe(2);
    expect(disabled.coherent).toBe(false);
    expect(disabled.status()).toMatchObject({ enabled: false, feed: "unused", serving: false });

    const withoutFeed = { ...wrapStorage(backend, {}) };
    delete (withoutFeed as { subscribeChanges?: unknown }).subscribeChanges;
    const plain = new StorageCache(withoutFeed as StorageBackend, { maxBytes: MiB });
    expect(plain.coherent).toBe(false);
    expect(plain.status().feed).toBe("absent");
    expect("subscribeChanges" in plain.storage).toBe(false);
  });

  it("answers getMany from the cache where it can and reads only the rest", async () => {
    const { storage, counts } = counted(backend);
    const cache = new StorageCache(storage, { maxBytes: MiB });
    await until(() => cache.coherent);
    await backend.put("m/1", Buffer.from("1"));
    await backend.put("m/2", Buffer.from("2"));
    await cache.storage.get("m/1");
    const values = await (cache.storage.getMany as NonNullable<StorageBackend["getMany"]>)(["m/1", "m/2", "m/3", "m/1"]);
    expect(values.map((value) => value?.toString() ?? null)).toEqual(["1", "2", null, "1"]);
    expect(counts.getMany).toBe(1);
    const again = await (cache.storage.getMany as NonNullable<StorageBackend["getMany"]>)(["m/2", "m/1"]);
    expect(again.map((value) => value?.toString() ?? null)).toEqual(["2", "1"]);
    expect(counts.getMany).toBe(1);
    // An absent key is read again each time.
    await (cache.storage.getMany as NonNullable<StorageBackend["getMany"]>)(["m/3"]);
    expect(counts.getMany).toBe(2);
    cache.stop();
  });

  it("hands out copies: changing a returned value does not change the cache", async () => {
    const cache = new StorageCache(backend, { maxBytes: MiB });
    await until(() => cache.coherent);
    await backend.put("c", Buffer.from("abc"));
    const first = (await cache.storage.get("c")) as Buffer;
    first.fill(0);
    expect((await cache.storage.get("c"))?.toString()).toBe("abc");
    const second = (await cache.storage.get("c")) as Buffer;
    second.fill(0);
    expect((await cache.storage.get("c"))?.toString()).toBe("abc");
    cache.stop();
  });

  // 200-byte records are what tokens and KV metadata look like: small copies must not pin Node's
  // shared 8 KiB Buffer pool slabs (which once made a 64 MiB budget hold over 200 MiB).
  it.each([200, 4096])("stays within its byte budget under a working set ten times its size (%i-byte records)", async (size) => {
    const budget = MiB;
    const cache = new StorageCache(backend, { maxBytes: budget });
    await until(() => cache.coherent);
    const value = Buffer.alloc(size, 7);
    const keys = Array.from({ length: Math.ceil((10 * budget) / value.length) }, (_, index) => `w/${index}`);
    await backend.transaction(async (tx) => {
      for (const key of keys) await tx.put(key, value);
    });
    const heapBefore = await heldBytes();
    for (let round = 0; round < 2; round += 1) {
      for (const key of keys) {
        expect((await cache.storage.get(key))?.length).toBe(value.length);
        // What a server does between reads: short-lived small Buffers from Node's shared pool.
        Buffer.from("request garbage ".repeat(190));
        expect(cache.status().bytes).toBeLessThanOrEqual(budget);
      }
    }
    const status = cache.status();
    expect(status.bytes).toBeLessThanOrEqual(budget);
    expect(status.bytes).toBeGreaterThan(budget / 2);
    expect(status.entries).toBeLessThan(keys.length / 5);
    const heapAfter = await heldBytes();
    // What the process holds grew by about the budget, not by the 10 MiB working set.
    expect(heapAfter - heapBefore).toBeLessThan(4 * budget);
    cache.stop();
  });
});
