import { expect, it } from "vitest";
import type { StorageBackend } from "@egide/storage-core";
import { scanKeys } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { utf8 } from "./utf8.js";

/**
 * `exists` and `delete`: exists tracks puts and deletes and is false for a folder-only path;
 * delete of an absent key is not an error and is never recursive.
 */
export function exerciseExistsDelete(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), TEST_TIMEOUT_MS);
  };

  test("exists is false for an absent key", async (b) => {
    expect(await b.exists("absent")).toBe(false);
  });

  test("exists is true after put and false after delete", async (b) => {
    await b.put("e", utf8("v"));
    expect(await b.exists("e")).toBe(true);
    await b.delete("e");
    expect(await b.exists("e")).toBe(false);
  });

  test("exists is false for a folder-only path, and get returns null for it", async (b) => {
    await b.put("foo/bar", utf8("v"));
    expect(await b.exists("foo")).toBe(false);
    expect(await b.get("foo")).toBeNull();
  });

  test("exists is true for a key that also has children", async (b) => {
    await b.put("foo", utf8("v"));
    await b.put("foo/bar", utf8("v"));
    expect(await b.exists("foo")).toBe(true);
    expect(await b.exists("fo")).toBe(false);
    expect(await b.exists("foo/ba")).toBe(false);
  });

  test("delete of an absent key resolves, twice in a row", async (b) => {
    await expect(b.delete("never/was")).resolves.toBeUndefined();
    await b.put("once", utf8("v"));
    await b.delete("once");
    await expect(b.delete("once")).resolves.toBeUndefined();
  });

  test("delete is not recursive: deleting foo leaves foo/bar", async (b) => {
    await b.put("foo", utf8("v"));
    await b.put("foo/bar", utf8("child"));
    await b.put("foo/bar/baz", utf8("grandchild"));
    await b.delete("foo");
    expect(await scanKeys(b, "")).toEqual(["foo/bar", "foo/bar/baz"]);
  });

  test("deleting a folder-only path is a no-op", async (b) => {
    await b.put("dir/a", utf8("v"));
    await b.delete("dir");
    expect(await scanKeys(b, "")).toEqual(["dir/a"]);
    expect(await b.list("")).toEqual(["dir/"]);
  });

  test("delete removes only the exact key, not keys it prefixes", async (b) => {
    for (const key of ["ab", "abc", "ab/c", "a"]) await b.put(key, utf8("v"));
    await b.delete("ab");
    expect(await scanKeys(b, "")).toEqual(["a", "ab/c", "abc"]);
  });

  test("a deleted key can be put again", async (b) => {
    await b.put("again", utf8("one"));
    await b.delete("again");
    await b.put("again", utf8("two"));
    expect((await b.get("again"))?.toString()).toBe("two");
    expect(await b.list("")).toEqual(["again"]);
  });
}
