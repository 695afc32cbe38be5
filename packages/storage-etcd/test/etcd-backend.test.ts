import { freeLoopbackPort } from "@egide/test-etcd";
import { StorageError, ValueTooLargeError } from "@egide/storage-core";
import { KVClient } from "etcd3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EtcdBackend } from "../src/index.js";
import { TEST_TIMEOUTS, freshPrefix, useEtcd } from "./support/etcd-fixture.js";

const etcd = useEtcd();

/** Counts the adapter's etcd range requests (and the keys they return) while `fn` runs. */
async function countRanges<T>(fn: () => Promise<T>): Promise<{ result: T; requests: number; keys: number; walked: number }> {
  const range = KVClient.prototype.range;
  let requests = 0;
  let keys = 0;
  // etcd 3.4 walks every key of a range's interval, whatever its limit, and reports them as `count`.
  let walked = 0;
  const spy = vi.spyOn(KVClient.prototype, "range").mockImplementation(async function (this: KVClient, ...args) {
    requests++;
    const response = await range.apply(this, args);
    keys += response.kvs.length;
    walked += Number(response.count);
    return response;
  });
  try {
    return { result: await fn(), requests, keys, walked };
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

describe("transactions past etcd's --max-txn-ops (128)", () => {
  it("commits 2,000 puts in one transaction, all or nothing", async () => {
    const backend = await etcd.open();
    try {
      const keys = Array.from({ length: 2000 }, (_, i) => `bulk/${String(i).padStart(4, "0")}`);
      await backend.transaction((tx) => tx.putMany!(keys.map((key) => ({ key, value: Buffer.from(key) }))));
      expect((await backend.getMany(keys)).every((value, i) => value?.toString() === keys[i])).toBe(true);
      const failure = new Error("roll back");
      await expect(
        backend.transaction(async (tx) => {
          for (const key of keys) await tx.delete(key);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await backend.exists("bulk/1999")).toBe(true);
    } finally {
      await etcd.destroy(backend);
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

describe("audit retention", () => {
  it("deletes records older than audit_retention in the background, and keeps the newer ones", async () => {
    const backend = await etcd.open({ auditRetentionMs: 1000 });
    try {
      await backend.audit.appendMany(Array.from({ length: 5 }, (_, i) => ({ operation: "old", path: `p/${i}`, success: true })));
      expect(await backend.audit.query()).toHaveLength(5);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const kept = await backend.audit.append({ operation: "new", path: "p/new", success: true });
      // The periodic pass (every second with this retention) deletes the old ones by itself.
      const deadline = Date.now() + 5000;
      while ((await backend.audit.query()).length > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await backend.audit.query()).toEqual([kept]);
      expect(await backend.audit.prune()).toBe(0);
      expect(await backend.audit.prune(Date.now() + 2000)).toBe(1);
      expect(await backend.audit.query()).toEqual([]);
    } finally {
      await etcd.destroy(backend);
    }
  }, 20_000);
});
