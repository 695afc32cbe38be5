import { expect, it } from "vitest";
import type { StorageBackend } from "@egide/storage-core";
import { checkListAndPage } from "./check-list-and-page.js";
import type { ConformanceContext } from "./conformance-context.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { utf8 } from "./utf8.js";

const V = utf8("v");

// Under "p/": leaves a, a!, c, e and folders a/, b/, d/ (with nested keys, so the walk must
// skip whole subtrees). Byte order puts "!" (0x21) before "/" (0x2f).
const MIXED_KEYS = ["p/a", "p/a!", "p/a/1", "p/a/2/deep", "p/b/x", "p/b/y", "p/c", "p/d/z", "p/e"];
const MIXED = ["a", "a!", "a/", "b/", "c", "d/", "e"];

const LEAF_NAMES = ["k01", "k02", "k03", "k04", "k05", "k06", "k07"];

async function putAll(backend: StorageBackend, keys: readonly string[]): Promise<void> {
  for (const key of keys) await backend.put(key, V);
}

/** Pages through `list(prefix)` by feeding each page's last entry back as `after`. */
async function walk(backend: StorageBackend, prefix: string, pageSize: number): Promise<string[][]> {
  const pages: string[][] = [];
  let after = "";
  for (;;) {
    const page = await backend.listPage(prefix, after, pageSize);
    expect(page.length, `page after ${JSON.stringify(after)} exceeds its limit`).toBeLessThanOrEqual(pageSize);
    if (page.length === 0) return pages;
    pages.push(page);
    after = page[page.length - 1] as string;
    // A backend whose cursor does not advance would loop for ever.
    expect(pages.length, "listPage walk does not terminate").toBeLessThanOrEqual(1000);
  }
}

/**
 * `listPage(prefix, after, limit)`: every limit case (≤ 0, exact, larger), cursor walks over
 * leaves and folders, and cursors that are not entries (before the first, after the last,
 * between entries, inside a folder's range), plus the empty-folder case.
 */
export function exerciseListPage(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), TEST_TIMEOUT_MS);
  };

  test("limit 0 returns every entry", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "", 0)).toEqual(MIXED);
  });

  test("a negative limit (-1, -100) returns every entry", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "", -1)).toEqual(MIXED);
    expect(await b.listPage("p/", "", -100)).toEqual(MIXED);
  });

  test("a limit of exactly the count returns every entry", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "", MIXED.length)).toEqual(MIXED);
  });

  test("a limit of count + 1 returns every entry", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "", MIXED.length + 1)).toEqual(MIXED);
  });

  test("a smaller limit returns the first entries", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "", 1)).toEqual(MIXED.slice(0, 1));
    expect(await b.listPage("p/", "", 3)).toEqual(MIXED.slice(0, 3));
    expect(await b.listPage("p/", "", MIXED.length - 1)).toEqual(MIXED.slice(0, -1));
  });

  test("a limit-1 walk over leaves visits every leaf once, in order", async (b) => {
    await putAll(
      b,
      LEAF_NAMES.map((name) => `leaves/${name}`),
    );
    const pages = await walk(b, "leaves/", 1);
    expect(pages).toEqual(LEAF_NAMES.map((name) => [name]));
  });

  test("a limit-1 walk over folders and leaves visits every entry once, in order", async (b) => {
    await putAll(b, MIXED_KEYS);
    const pages = await walk(b, "p/", 1);
    expect(pages).toEqual(MIXED.map((entry) => [entry]));
  });

  test("a limit-3 walk reassembles the whole listing", async (b) => {
    await putAll(b, MIXED_KEYS);
    const pages = await walk(b, "p/", 3);
    expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(MIXED);
  });

  test("a walk at the root lists top-level folders once each", async (b) => {
    await putAll(b, ["m/1", "m/2", "n", "n/1", "o/deep/er/1", "o/deep/er/2"]);
    expect((await walk(b, "", 1)).flat()).toEqual(["m/", "n", "n/", "o/"]);
  });

  test("a cursor before the first entry returns everything", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", " ", -1)).toEqual(MIXED);
    expect(await b.listPage("p/", "0", -1)).toEqual(MIXED);
  });

  test("a cursor after the last entry returns nothing", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "ez", -1)).toEqual([]);
    expect(await b.listPage("p/", "zzz", 5)).toEqual([]);
  });

  test("a cursor equal to the last entry returns nothing", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "e", 0)).toEqual([]);
  });

  test("a cursor that is not an entry starts at the next entry", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "bb", -1)).toEqual(["c", "d/", "e"]);
    expect(await b.listPage("p/", "c0", 1)).toEqual(["d/"]);
    expect(await b.listPage("p/", "a ", -1)).toEqual(["a!", "a/", "b/", "c", "d/", "e"]);
  });

  test("a cursor inside a folder's range skips that folder", async (b) => {
    await putAll(b, MIXED_KEYS);
    // "a/1" and "b/x" are keys below the folders, not entries of this level.
    expect(await b.listPage("p/", "a/1", -1)).toEqual(["b/", "c", "d/", "e"]);
    expect(await b.listPage("p/", "b/x", 2)).toEqual(["c", "d/"]);
    expect(await b.listPage("p/", "b/zzz", -1)).toEqual(["c", "d/", "e"]);
  });

  test("a folder cursor skips the folder's whole subtree", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "a/", -1)).toEqual(["b/", "c", "d/", "e"]);
    expect(await b.listPage("p/", "b/", 1)).toEqual(["c"]);
  });

  test("a leaf cursor is followed by the folder of the same name", async (b) => {
    await putAll(b, MIXED_KEYS);
    expect(await b.listPage("p/", "a", 2)).toEqual(["a!", "a/"]);
    expect(await b.listPage("p/", "a!", 1)).toEqual(["a/"]);
  });

  test("a folder emptied by deletes vanishes from pages", async (b) => {
    await putAll(b, MIXED_KEYS);
    await b.delete("p/b/x");
    await b.delete("p/b/y");
    const remaining = MIXED.filter((entry) => entry !== "b/");
    expect(await b.listPage("p/", "", -1)).toEqual(remaining);
    expect(await b.listPage("p/", "a/", 1)).toEqual(["c"]);
    expect((await walk(b, "p/", 1)).flat()).toEqual(remaining);
  });

  test("pages of a nested prefix are relative to it", async (b) => {
    await putAll(b, ["deep/er/x/1", "deep/er/y", "deep/er/z/2", "deep/other"]);
    expect(await b.listPage("deep/er/", "x/", -1)).toEqual(["y", "z/"]);
    expect(await b.listPage("deep/er/", "", 2)).toEqual(["x/", "y"]);
  });

  test("a cursor on an empty listing returns nothing", async (b) => {
    await b.put("elsewhere", V);
    expect(await b.listPage("empty/", "bogus", -1)).toEqual([]);
    expect(await b.listPage("empty/", "bogus", 2)).toEqual([]);
    expect(await b.listPage("empty/", "", 1)).toEqual([]);
  });

  test("the full OpenBao page walk holds on a mixed listing", async (b) => {
    await putAll(b, MIXED_KEYS);
    await checkListAndPage(b, "p/", MIXED);
  });

  test("pages over multi-byte entries cut in byte order", async (b) => {
    const names = ["z", "é", "日本", "\uFFFD", "😀"];
    await putAll(
      b,
      names.map((name) => `mb/${name}`),
    );
    await putAll(b, ["mb/é/sub"]);
    await checkListAndPage(b, "mb/", ["z", "é", "é/", "日本", "\uFFFD", "😀"]);
    expect(await b.listPage("mb/", "\uFFFD", -1)).toEqual(["😀"]);
  });
}
