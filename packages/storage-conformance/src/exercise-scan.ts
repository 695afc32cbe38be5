import { expect, it } from "vitest";
import { compareKeys } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { collectScan, scanKeys } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { SLOW_TEST_TIMEOUT_MS, TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { utf8 } from "./utf8.js";

const BIG = 1500;

/** Writes many keys in transactions of a few hundred, which keeps even fsync-per-commit backends fast. */
async function putMany(backend: StorageBackend, keys: readonly string[], value: (key: string) => Buffer): Promise<void> {
  for (let start = 0; start < keys.length; start += 250) {
    const batch = keys.slice(start, start + 250);
    await backend.transaction(async (tx) => {
      for (const key of batch) await tx.put(key, value(key));
    });
  }
}

/**
 * `scan(prefix)`: every key that starts with `prefix` (a string prefix, like list's), the
 * whole subtree, in byte order, across more entries than one page; early exit; and writes
 * while a scan is being consumed.
 */
export function exerciseScan(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>, timeout = TEST_TIMEOUT_MS): void => {
    it(title, () => body(context.backend()), timeout);
  };

  test("scan of an empty store yields nothing", async (b) => {
    expect(await collectScan(b, "")).toEqual([]);
    expect(await collectScan(b, "any/")).toEqual([]);
  });

  test(
    `scan of a subtree of ${BIG} keys yields exactly those keys in byte order with their values`,
    async (b) => {
      // Names that sort differently as numbers, as UTF-16 and as bytes, in nested folders.
      const keys = Array.from({ length: BIG }, (_, i) => {
        const tail = i % 3 === 0 ? "😀" : i % 3 === 1 ? "\uFFFD" : "z";
        return `big/${i % 10}/${i}${tail}`;
      });
      const decoys = ["bif/1", "big0", "bigx", "big", "bih/1", "a", "big0/1"];
      await putMany(b, [...keys, ...decoys], (key) => utf8(`value:${key}`));
      const entries = await collectScan(b, "big/");
      expect(entries.length).toBe(BIG);
      expect(entries.map((e) => e.key)).toEqual([...keys].sort(compareKeys));
      const wrong = entries.filter((e) => e.value.toString("utf8") !== `value:${e.key}`).map((e) => e.key);
      expect(wrong).toEqual([]);
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  test("scan is a string-prefix match: scan('big/') excludes big0 and the key big itself", async (b) => {
    for (const key of ["big", "big/a", "big/b/c", "big0", "bigx", "bif/z"]) await b.put(key, utf8(key));
    expect(await scanKeys(b, "big/")).toEqual(["big/a", "big/b/c"]);
    expect(await scanKeys(b, "big")).toEqual(["big", "big/a", "big/b/c", "big0", "bigx"]);
    expect(await scanKeys(b, "bi")).toEqual(["bif/z", "big", "big/a", "big/b/c", "big0", "bigx"]);
  });

  test("scan yields the whole subtree, not only direct children", async (b) => {
    const keys = ["t/a", "t/b/c", "t/b/d/e/f", "t/g"];
    for (const key of keys) await b.put(key, utf8("v"));
    expect(await scanKeys(b, "t/")).toEqual(keys);
  });

  test('scan("") yields every key in byte order', async (b) => {
    const keys = ["b", "a/b", "a", "A", "a-b", "a0", "😀", "\uE000"];
    for (const key of keys) await b.put(key, utf8(key));
    expect(await scanKeys(b, "")).toEqual([...keys].sort(compareKeys));
  });

  test("scan does not yield deleted keys", async (b) => {
    for (const key of ["s/1", "s/2", "s/3"]) await b.put(key, utf8("v"));
    await b.delete("s/2");
    expect(await scanKeys(b, "s/")).toEqual(["s/1", "s/3"]);
  });

  test(
    "breaking out of a scan early leaves the backend usable",
    async (b) => {
      await putMany(
        b,
        Array.from({ length: 300 }, (_, i) => `e/${String(i).padStart(3, "0")}`),
        () => utf8("v"),
      );
      let seen = 0;
      for await (const entry of b.scan("e/")) {
        expect(entry.key).toBe(`e/${String(seen).padStart(3, "0")}`);
        if (++seen === 3) break;
      }
      expect(seen).toBe(3);
      await b.put("after-break", utf8("ok"));
      expect((await b.get("after-break"))?.toString()).toBe("ok");
      await b.transaction(async (tx) => tx.put("after-break/tx", utf8("ok")));
      expect((await scanKeys(b, "e/")).length).toBe(300);
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  test("a scan that throws in the consumer's loop leaves the backend usable", async (b) => {
    for (const key of ["x/1", "x/2", "x/3"]) await b.put(key, utf8("v"));
    await expect(
      (async () => {
        for await (const entry of b.scan("x/")) {
          if (entry.key === "x/2") throw new Error("consumer failed");
        }
      })(),
    ).rejects.toThrow("consumer failed");
    await b.put("x/4", utf8("v"));
    expect(await scanKeys(b, "x/")).toEqual(["x/1", "x/2", "x/3", "x/4"]);
  });

  test(
    "writes while a scan is consumed do not break it",
    async (b) => {
      const keys = Array.from({ length: 600 }, (_, i) => `src/${String(i).padStart(4, "0")}`);
      await putMany(b, keys, (key) => utf8(key));
      const seen: string[] = [];
      // A migration-style loop: read each entry and write a copy elsewhere, mid-iteration.
      for await (const entry of b.scan("src/")) {
        seen.push(entry.key);
        await b.put(`dst/${entry.key.slice(4)}`, entry.value);
      }
      expect(seen).toEqual(keys);
      expect((await scanKeys(b, "dst/")).length).toBe(keys.length);
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  test("two scans can be consumed interleaved", async (b) => {
    for (let i = 0; i < 5; i++) {
      await b.put(`l/${i}`, utf8(`l${i}`));
      await b.put(`r/${i}`, utf8(`r${i}`));
    }
    const left = b.scan("l/")[Symbol.asyncIterator]();
    const right = b.scan("r/")[Symbol.asyncIterator]();
    const pairs: string[] = [];
    for (;;) {
      const [l, r] = [await left.next(), await right.next()];
      if (l.done || r.done) {
        expect(l.done && r.done).toBe(true);
        break;
      }
      pairs.push(`${l.value.key}+${r.value.key}`);
    }
    expect(pairs).toEqual(Array.from({ length: 5 }, (_, i) => `l/${i}+r/${i}`));
  });
}
