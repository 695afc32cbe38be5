import { freeLoopbackPort } from "@egide/test-etcd";
import { type AuditingTransaction, StorageError, ValueTooLargeError } from "@egide/storage-core";
import { KVClient } from "etcd3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EtcdBackend } from "../src/index.js";
import { TEST_TIMEOUTS, freshPrefix, useEtcd } from "./support/etcd-fixture.js";

const etcd = useEtcd();

/** Counts the adapter's etcd range requests (and the keys they return) while `fn` runs. */
async function countRanges<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; requests: number; keys: number; walked: number; walks: number[] }> {
  const range = KVClient.prototype.range;
  let requests = 0;
  let keys = 0;
  // etcd 3.4 walks every key of a range's interval, whatever its limit, and reports them as `count`.
  let walked = 0;
  const walks: number[] = [];
  const spy = vi.spyOn(KVClient.prototype, "range").mockImplementation(async function (this: KVClient, ...args) {
    requests++;
    const response = await range.apply(this, args);
    keys += response.kvs.length;
    walked += Number(response.count);
    walks.push(Number(response.count));
    return response;
  });
  try {
    return { result: await fn(), requests, keys, walked, walks };
  } finally {
    spy.mockRestore();
  }
}

/** Seeds `keys` under `prefix` through the raw client, 100 puts a transaction (within etcd's 128 operations). */
async function seed(prefix: string, keys: readonly string[]): Promise<void> {
  const value = Buffer.from("v");
  for (let start = 0; start < keys.length; start += 100) {
    const batch = keys.slice(start, start + 100);
    await etcd.raw().kv.txn({ success: batch.map((key) => ({ request_put: { key: Buffer.from(`${prefix}kv/${key}`), value } })) });
  }
}

describe("values", () => {
  const opened: EtcdBackend[] = [];
  afterEach(async () => {
    for (const backend of opened.splice(0)) await etcd.destroy(backend);
  });

  it("refuses a value past max_value_bytes with ValueTooLargeError naming both sizes, writing nothing", async () => {
    const backend = await etcd.open({ maxValueBytes: 1000 });
    opened.push(backend);
    await backend.put("fits", new Uint8Array(1000));
    const error = await backend.put("big", new Uint8Array(1001)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValueTooLargeError);
    expect(error).toMatchObject({ code: "VALUE_TOO_LARGE", size: 1001, limit: 1000, retryable: false });
    expect((error as Error).message).toBe("etcd: value of 1001 bytes exceeds the limit of 1000 bytes");
    const inTx = await backend.transaction((tx) => tx.put("big", new Uint8Array(1001))).catch((e: unknown) => e);
    expect(StorageError.isInstance(inTx, "VALUE_TOO_LARGE")).toBe(true);
    expect(await backend.exists("big")).toBe(false);
  });

  it("refuses a transaction etcd could not take in one request, before sending it, writing nothing", async () => {
    const backend = await etcd.open();
    opened.push(backend);
    const large = Buffer.alloc(700 * 1024, 7);
    const error = await backend
      .transaction(async (tx) => {
        await tx.put("a", large);
        await tx.put("b", large);
        await tx.put("c", large);
      })
      .catch((e: unknown) => e);
    expect(StorageError.isInstance(error, "VALUE_TOO_LARGE")).toBe(true);
    expect((error as Error).message).toContain("max_request_bytes");
    expect(await backend.list("")).toEqual([]);
  });
});

describe("scan", () => {
  it("reads pages sized by bytes: large values come a few at a time, not 256 at once", async () => {
    const prefix = freshPrefix("scan");
    const value = Buffer.alloc(600 * 1024, 1);
    for (let i = 0; i < 12; i++)
      await etcd
        .raw()
        .put(`${prefix}kv/big/${String(i).padStart(2, "0")}`)
        .value(value);
    await seed(
      prefix,
      Array.from({ length: 300 }, (_, i) => `small/${String(i).padStart(3, "0")}`),
    );
    const backend = await etcd.open({ prefix });
    const pageBytes: number[] = [];
    const range = KVClient.prototype.range;
    const spy = vi.spyOn(KVClient.prototype, "range").mockImplementation(async function (this: KVClient, ...args) {
      const response = await range.apply(this, args);
      pageBytes.push(response.kvs.reduce((sum, kv) => sum + kv.value.length, 0));
      return response;
    });
    try {
      const keys: string[] = [];
      for await (const entry of backend.scan("big/")) {
        expect(entry.value.equals(value)).toBe(true);
        keys.push(entry.key);
      }
      expect(keys).toHaveLength(12);
      // 7.2 MB of values: every page stays within 4 MiB.
      expect(pageBytes.length).toBeGreaterThanOrEqual(2);
      expect(Math.max(...pageBytes)).toBeLessThanOrEqual(4 * 1024 * 1024);
      pageBytes.length = 0;
      let small = 0;
      for await (const _ of backend.scan("small/")) small++;
      expect(small).toBe(300);
      // Small values: after a first page sized for max_value_bytes, pages grow to 256 entries.
      expect(pageBytes.length).toBeLessThanOrEqual(3);
    } finally {
      spy.mockRestore();
      await etcd.destroy(backend);
    }
  }, 30_000);
});

describe("transactions past etcd's --max-txn-ops (128)", () => {
  it("commits 2,000 puts in one transaction, all or nothing: a conflicting first run leaves nothing, the second lands in one revision", async () => {
    const prefix = freshPrefix("bulk");
    const writer = await etcd.open({ prefix });
    const watcher = await etcd.open({ prefix });
    const changes: string[][] = [];
    const subscription = watcher.subscribeChanges!({ change: (change) => changes.push([...(change.keys ?? [])]), live: () => undefined });
    try {
      const deadline = Date.now() + 5000;
      while (!subscription.live && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(subscription.live).toBe(true);
      await writer.put("guard", Buffer.from("0"));
      const keys = Array.from({ length: 2000 }, (_, i) => `bulk/${String(i).padStart(4, "0")}`);
      let runs = 0;
      await writer.transaction(async (tx) => {
        runs++;
        await tx.get("guard");
        await tx.putMany!(keys.map((key) => ({ key, value: Buffer.from(String(runs)) })));
        // A concurrent write to what the first run read: its commit must apply none of its 2,000 puts.
        if (runs === 1) await watcher.put("guard", Buffer.from("1"));
      });
      expect(runs).toBe(2);
      const values = await writer.getMany(keys);
      expect(values.filter((value) => value?.toString() !== "2")).toEqual([]);
      // Another client sees the commit as one change of all 2,000 keys (one etcd revision), never a part.
      const seen = Date.now() + 5000;
      while (!changes.some((keysOfChange) => keysOfChange.some((key) => key.startsWith("bulk/"))) && Date.now() < seen)
        await new Promise((resolve) => setTimeout(resolve, 20));
      const bulk = changes.filter((keysOfChange) => keysOfChange.some((key) => key.startsWith("bulk/")));
      expect(bulk.map((keysOfChange) => keysOfChange.length)).toEqual([2000]);
      const failure = new Error("roll back");
      await expect(
        writer.transaction(async (tx) => {
          for (const key of keys) await tx.delete(key);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await writer.exists("bulk/1999")).toBe(true);
    } finally {
      subscription.close();
      await writer.close();
      await etcd.destroy(watcher);
    }
  }, 30_000);

  it("detects a concurrent delete of one of 200 keys a transaction read, and runs it again", async () => {
    const backend = await etcd.open();
    try {
      const keys = Array.from({ length: 200 }, (_, i) => `r/${String(i).padStart(3, "0")}`);
      await backend.transaction((tx) => tx.putMany!(keys.map((key) => ({ key, value: Buffer.from("1") }))));
      let runs = 0;
      const total = await backend.transaction(async (tx) => {
        runs++;
        const values = await tx.getMany!(keys);
        if (runs === 1) await backend.delete("r/150");
        const sum = values.filter((value) => value !== null).length;
        await tx.put("sum", Buffer.from(String(sum)));
        return sum;
      });
      expect(runs).toBe(2);
      expect(total).toBe(199);
      expect((await backend.get("sum"))?.toString()).toBe("199");
    } finally {
      await etcd.destroy(backend);
    }
  }, 30_000);

  it("detects a concurrent delete of a listed key, and runs the transaction again", async () => {
    const backend = await etcd.open();
    try {
      await backend.put("l/a", Buffer.from("1"));
      await backend.put("l/b", Buffer.from("1"));
      let runs = 0;
      const listed = await backend.transaction(async (tx) => {
        runs++;
        const names = await tx.list("l/");
        if (runs === 1) await backend.delete("l/b");
        await tx.put("count", Buffer.from(String(names.length)));
        return names;
      });
      expect(runs).toBe(2);
      expect(listed).toEqual(["a"]);
    } finally {
      await etcd.destroy(backend);
    }
  }, 30_000);
});

describe("list costs O(children) round trips, not O(subtree)", () => {
  it("lists 5 children over a subtree of 6,000 keys in a few keys-only range requests", async () => {
    const prefix = freshPrefix("list");
    const keys = [
      "big/a",
      "big/d",
      ...Array.from({ length: 3000 }, (_, i) => `big/b/${i}`),
      ...Array.from({ length: 2000 }, (_, i) => `big/c/x/y/${i}`),
      ...Array.from({ length: 1000 }, (_, i) => `big/e/${i}/z`),
      ...Array.from({ length: 500 }, (_, i) => `bif/${i}`),
      ...Array.from({ length: 500 }, (_, i) => `big0/${i}`),
    ];
    await seed(prefix, keys);
    const backend = await etcd.open({ prefix });
    try {
      const listed = await countRanges(() => backend.list("big/"));
      expect(listed.result).toEqual(["a", "b/", "c/", "d", "e/"]);
      // One probe of 256 keys, then one after each folder jump: 4 here, against 6,000 keys read by a full range.
      expect(listed.requests).toBeLessThanOrEqual(5);
      expect(listed.keys).toBeLessThan(400);
      const inTx = await countRanges(() => backend.transaction((tx) => tx.list("big/"), { readOnly: true }));
      expect(inTx.result).toEqual(["a", "b/", "c/", "d", "e/"]);
      expect(inTx.requests).toBeLessThanOrEqual(5);
      const page = await countRanges(() => backend.listPage("big/", "b/", 2));
      expect(page.result).toEqual(["c/", "d"]);
      expect(page.requests).toBeLessThanOrEqual(3);
      const root = await countRanges(() => backend.list(""));
      expect(root.result).toEqual(["bif/", "big/", "big0/"]);
      expect(root.requests).toBeLessThanOrEqual(4);
      // The naive alternative, for scale: every key of the subtree crosses the network.
      const naive = await countRanges(() =>
        etcd.raw().kv.range({ key: Buffer.from(`${prefix}kv/big/`), range_end: Buffer.from(`${prefix}kv/big0`), keys_only: true }),
      );
      expect(naive.keys).toBe(6002);
    } finally {
      await etcd.destroy(backend);
    }
  }, 60_000);
});

describe("list over many children with large subtrees", () => {
  it("reads the rest of the range once when more probes would walk more keys on the server than that", async () => {
    const prefix = freshPrefix("many");
    const folders = Array.from({ length: 300 }, (_, i) => `f${String(i).padStart(3, "0")}/`);
    await seed(
      prefix,
      folders.flatMap((folder) => Array.from({ length: 20 }, (_, j) => `m/${folder}k${j}`)),
    );
    const backend = await etcd.open({ prefix });
    try {
      const listed = await countRanges(() => backend.list("m/"));
      expect(listed.result).toEqual(folders);
      // A probe per folder would walk about 300 × 6,000 / 2 keys on the server; the switch keeps it near 6,000 a few times.
      expect(listed.requests).toBeLessThanOrEqual(4);
      expect(listed.walked).toBeLessThan(4 * 6000);
      const paged = await countRanges(() => backend.listPage("m/", "f100/", 50));
      expect(paged.result).toEqual(folders.slice(101, 151));
      // A page needs 50 folders of 20 keys: the switch reads about that many keys (estimated from
      // the probes so far), not the 4,000 after f100/.
      expect(paged.keys, JSON.stringify([paged.requests, paged.walks])).toBeLessThan(2500);
      const inTxPage = await countRanges(() => backend.transaction((tx) => tx.listPage("m/", "f100/", 50)));
      expect(inTxPage.result).toEqual(folders.slice(101, 151));
      expect(inTxPage.keys).toBeLessThan(2500);
      const inTx = await backend.transaction(async (tx) => {
        await tx.delete("m/f000/k0");
        await tx.put("m/g/new", Buffer.from("x"));
        return tx.list("m/");
      });
      expect(inTx).toEqual([...folders, "g/"]);
      expect(await backend.list("m/")).toEqual([...folders, "g/"]);
    } finally {
      await etcd.destroy(backend);
    }
  }, 60_000);
});

describe("opening", () => {
  it("fails with a retryable UNAVAILABLE naming the endpoint when nothing listens there", async () => {
    const port = await freeLoopbackPort();
    const started = Date.now();
    const error = await EtcdBackend.open({ endpoints: [`http://127.0.0.1:${port}`], dialTimeoutMs: 500, requestTimeoutMs: 1500 }).catch(
      (e: unknown) => e,
    );
    expect(StorageError.isInstance(error, "UNAVAILABLE")).toBe(true);
    expect((error as StorageError).retryable).toBe(true);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("opens through backendDefinition from a configuration table", async () => {
    const { backendDefinition } = await import("../src/index.js");
    const prefix = freshPrefix("def");
    const config = backendDefinition.parseConfig(
      {
        endpoints: etcd.cluster().endpoints,
        prefix,
        dial_timeout: TEST_TIMEOUTS.dialTimeoutMs,
        request_timeout: TEST_TIMEOUTS.requestTimeoutMs,
      },
      {},
    );
    const backend = await backendDefinition.create(config);
    try {
      await backend.put("k", Buffer.from("v"));
      expect((await etcd.raw().get(`${prefix}kv/k`).string()) ?? null).toBe("v");
      expect((await backend.audit.append({ operation: "read", path: "k", success: true })).id).toBeGreaterThan(0);
      expect(await backend.health()).toMatchObject({ status: "healthy" });
    } finally {
      await backend.close();
      await etcd.raw().delete().prefix(prefix);
    }
  });
});

describe("the change feed while this process stalls", () => {
  it("stays live across a 1.5 s stall of the event loop, etcd being healthy", async () => {
    const backend = await etcd.open();
    const liveCalls: boolean[] = [];
    const subscription = backend.subscribeChanges!({ change: () => undefined, live: (live) => liveCalls.push(live) });
    try {
      const deadline = Date.now() + 5000;
      while (!subscription.live && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(subscription.live).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Synchronous work (or a GC pause) longer than the probe timeout: no answer can be handled meanwhile.
      const end = Date.now() + 1500;
      while (Date.now() < end) {
        // busy
      }
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(liveCalls).toEqual([true]);
      expect(backend.changeFeedStatus()).toMatchObject({ live: true, reconnects: 0 });
    } finally {
      subscription.close();
      await etcd.destroy(backend);
    }
  }, 15_000);
});

describe("audit batches past etcd's --max-txn-ops (128)", () => {
  it("appends 500 records in one appendMany, and 300 appendAudit calls in one transaction", async () => {
    const backend = await etcd.open();
    try {
      const entry = (i: number) => ({ operation: "batch", path: `p/${i}`, success: true });
      const many = await backend.audit.appendMany(Array.from({ length: 500 }, (_, i) => entry(i)));
      expect(many).toHaveLength(500);
      const inTx = await backend.transaction(async (tx) => {
        const records = [];
        for (let i = 0; i < 300; i++) records.push(await (tx as AuditingTransaction).appendAudit(entry(500 + i)));
        await tx.put("k", Buffer.from("v"));
        return records;
      });
      expect(inTx).toHaveLength(300);
      const stored = await backend.audit.query({ limit: 1000 });
      expect(stored.map((record) => record.path)).toEqual(Array.from({ length: 800 }, (_, i) => `p/${i}`));
    } finally {
      await etcd.destroy(backend);
    }
  }, 30_000);
});

describe("audit queries", () => {
  it("returns nothing after an afterId past every possible id (17 digits and more)", async () => {
    const backend = await etcd.open();
    try {
      const record = await backend.audit.append({ operation: "read", path: "x", success: true });
      expect(await backend.audit.query({ afterId: record.id - 1 })).toEqual([record]);
      for (const afterId of [record.id, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER, 1e16, 2e16, 1e17]) {
        expect(await backend.audit.query({ afterId }), String(afterId)).toEqual([]);
      }
    } finally {
      await etcd.destroy(backend);
    }
  });

  it("reads from `since` on, in bounded id windows, not the whole log on every page", async () => {
    const backend = await etcd.open();
    try {
      for (let i = 0; i < 10; i++) {
        await backend.audit.appendMany(Array.from({ length: 300 }, (_, j) => ({ operation: "old", path: `p/${i}/${j}`, success: true })));
      }
      // Past the margin a query starts before `since` (AUDIT_SINCE_MARGIN_MS, 1 s).
      await new Promise((resolve) => setTimeout(resolve, 1050));
      const since = new Date();
      await new Promise((resolve) => setTimeout(resolve, 5));
      const recent = await backend.audit.append({ operation: "new", path: "p/new", success: true });
      const fromSince = await countRanges(() => backend.audit.query({ since }));
      expect(fromSince.result).toEqual([recent]);
      // 3,000 older records: a read from the log's start would walk them all.
      expect(fromSince.walked).toBeLessThan(500);
      const selective = await countRanges(() => backend.audit.query({ operation: "new" }));
      expect(selective.result).toEqual([recent]);
      // Each page's range ends within a window: after the first page and the jump over the empty
      // start, a page walks about two pages of records, not the whole rest of the log (3,000 − 512 × pages).
      expect(selective.walks.filter((walked) => walked > 2000).length, String(selective.walks)).toBeLessThanOrEqual(2);
    } finally {
      await etcd.destroy(backend);
    }
  }, 30_000);
});

describe("audit retention", () => {
  it("deletes records older than audit_retention, oldest first, and keeps the newer ones", async () => {
    // A retention far longer than the test: the background pass never deletes anything here, and
    // each pass below is run with an explicit time.
    const retentionMs = 3_600_000;
    const backend = await etcd.open({ auditRetentionMs: retentionMs });
    try {
      const old = await backend.audit.appendMany(
        Array.from({ length: 5 }, (_, i) => ({ operation: "old", path: `p/${i}`, success: true })),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      const boundary = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 20));
      const kept = await backend.audit.append({ operation: "new", path: "p/new", success: true });
      expect(await backend.audit.query()).toEqual([...old, kept]);
      expect(await backend.audit.prune(boundary - 60_000 + retentionMs)).toBe(0);
      expect(await backend.audit.prune(boundary + retentionMs)).toBe(5);
      expect(await backend.audit.query()).toEqual([kept]);
      expect(await backend.audit.prune(boundary + retentionMs)).toBe(0);
      expect(await backend.audit.prune(Date.now() + retentionMs + 1000)).toBe(1);
      expect(await backend.audit.query()).toEqual([]);
    } finally {
      await etcd.destroy(backend);
    }
  });

  it("runs the pass in the background", async () => {
    const backend = await etcd.open({ auditRetentionMs: 1000 });
    try {
      await backend.audit.append({ operation: "old", path: "p/old", success: true });
      // The periodic pass (every second with this retention) deletes it by itself.
      const deadline = Date.now() + 8000;
      while ((await backend.audit.query()).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await backend.audit.query()).toEqual([]);
    } finally {
      await etcd.destroy(backend);
    }
  }, 20_000);
});
