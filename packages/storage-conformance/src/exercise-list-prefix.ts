import { expect, it } from "vitest";
import type { StorageBackend } from "@egide/storage-core";
import { checkListAndPage } from "./check-list-and-page.js";
import type { ConformanceContext } from "./conformance-context.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { utf8 } from "./utf8.js";

const TEST = utf8("test");

/** The three entries of OpenBao's `ExerciseBackend_ListPrefix`. */
async function putListPrefixEntries(backend: StorageBackend): Promise<void> {
  await backend.put("foo", TEST);
  await backend.put("foo/bar", TEST);
  await backend.put("foo/bar/baz", TEST);
}

/**
 * OpenBao's `ExerciseBackend_ListPrefix`: a key, a folder of the same name, and a nested
 * folder, listed at each level. The Go test sorts what it gets; here the backend must already
 * return byte order. Then the cases it leaves out: partial prefixes, a prefix below a leaf,
 * relative entries, and folders that vanish.
 */
export function exerciseListPrefix(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), TEST_TIMEOUT_MS);
  };

  test("the root lists [foo, foo/]", async (b) => {
    await putListPrefixEntries(b);
    await checkListAndPage(b, "", ["foo", "foo/"]);
  });

  test("level 1 (foo/) lists [bar, bar/]", async (b) => {
    await putListPrefixEntries(b);
    await checkListAndPage(b, "foo/", ["bar", "bar/"]);
  });

  test("level 2 (foo/bar/) lists [baz]", async (b) => {
    await putListPrefixEntries(b);
    await checkListAndPage(b, "foo/bar/", ["baz"]);
  });

  test("a prefix below a leaf (foo/bar/baz/) lists nothing", async (b) => {
    await putListPrefixEntries(b);
    await checkListAndPage(b, "foo/bar/baz/", []);
  });

  test("a prefix with no keys under it lists nothing", async (b) => {
    await putListPrefixEntries(b);
    await checkListAndPage(b, "nope/", []);
    await checkListAndPage(b, "fooo/", []);
  });

  test("a partial prefix lists entries relative to it (fo, foo/b)", async (b) => {
    await putListPrefixEntries(b);
    await b.put("fox", TEST);
    await checkListAndPage(b, "fo", ["o", "o/", "x"]);
    await checkListAndPage(b, "foo/b", ["ar", "ar/"]);
  });

  test("a partial prefix ending in a dot (a/.) lists hidden names", async (b) => {
    await b.put("a/.hidden", TEST);
    await b.put("a/.config/x", TEST);
    await b.put("a/visible", TEST);
    await checkListAndPage(b, "a/.", ["config/", "hidden"]);
    await checkListAndPage(b, "a/", [".config/", ".hidden", "visible"]);
  });

  test("a folder lists once however many keys it holds", async (b) => {
    for (let i = 0; i < 25; i++) await b.put(`dir/sub/k${i}`, TEST);
    await b.put("dir/sub2", TEST);
    await checkListAndPage(b, "dir/", ["sub/", "sub2"]);
  });

  test("list shows only direct children, never grandchildren", async (b) => {
    await b.put("a/b/c/d", TEST);
    await b.put("a/b/e", TEST);
    await b.put("a/f", TEST);
    expect(await b.list("")).toEqual(["a/"]);
    expect(await b.list("a/")).toEqual(["b/", "f"]);
    expect(await b.list("a/b/")).toEqual(["c/", "e"]);
  });

  test("a folder whose keys are all deleted vanishes at every level", async (b) => {
    await b.put("x/y/z/1", TEST);
    await b.put("x/y/z/2", TEST);
    await b.put("x/keep", TEST);
    await b.delete("x/y/z/1");
    await b.delete("x/y/z/2");
    await checkListAndPage(b, "x/", ["keep"]);
    await checkListAndPage(b, "x/y/", []);
    await checkListAndPage(b, "", ["x/"]);
  });
}
