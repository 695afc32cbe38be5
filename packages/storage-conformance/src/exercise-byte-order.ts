import { expect, it } from "vitest";
import type { StorageBackend } from "@egide/storage-core";
import { scanKeys } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { utf8 } from "./utf8.js";

// UTF-8 byte order: z (7A) < é (C3 A9) < U+E000 (EE 80 80) < U+FFFD (EF BF BD) < 😀 (F0 9F 98 80).
// JavaScript's default sort compares UTF-16 units and puts 😀 (D83D DE00) before U+E000.
const BYTE_ORDER = ["z", "é", "\uE000", "\uFFFD", "😀"];

/**
 * Byte order everywhere: list, listPage and scan sort in UTF-8 byte order (code point order),
 * not in UTF-16 order, not by locale, and with "/" compared as the byte 0x2F.
 */
export function exerciseByteOrder(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), TEST_TIMEOUT_MS);
  };

  test("list sorts astral characters after U+FFFD (byte order, not UTF-16 order)", async (b) => {
    for (const key of ["😀", "z", "\uFFFD", "é", "\uE000"]) await b.put(key, utf8(key));
    expect(await b.list("")).toEqual(BYTE_ORDER);
    expect([...BYTE_ORDER].sort()).not.toEqual(BYTE_ORDER);
  });

  test("scan yields astral characters after U+FFFD", async (b) => {
    for (const key of ["😀", "z", "\uFFFD", "é", "\uE000"]) await b.put(`o/${key}`, utf8(key));
    expect(await scanKeys(b, "o/")).toEqual(BYTE_ORDER.map((key) => `o/${key}`));
  });

  test("listPage cursors follow byte order across the astral boundary", async (b) => {
    for (const key of BYTE_ORDER) await b.put(key, utf8(key));
    expect(await b.listPage("", "\uE000", -1)).toEqual(["\uFFFD", "😀"]);
    expect(await b.listPage("", "\uFFFD", -1)).toEqual(["😀"]);
    expect(await b.listPage("", "😀", -1)).toEqual([]);
    expect(await b.listPage("", "é", 2)).toEqual(["\uE000", "\uFFFD"]);
  });

  test("a folder sorts by its '/' byte among leaves (a- < a/ < a0, a. < a/)", async (b) => {
    for (const key of ["a0", "a/x", "a-b", "a.", "a", "a/y/z"]) await b.put(key, utf8(key));
    expect(await b.list("")).toEqual(["a", "a-b", "a.", "a/", "a0"]);
    expect(await scanKeys(b, "")).toEqual(["a", "a-b", "a.", "a/x", "a/y/z", "a0"]);
    expect(await b.listPage("", "a.", -1)).toEqual(["a/", "a0"]);
  });

  test("uppercase sorts before lowercase, and digits before letters (no locale collation)", async (b) => {
    for (const key of ["b", "B", "a", "A", "1", "_", "~"]) await b.put(key, utf8(key));
    expect(await b.list("")).toEqual(["1", "A", "B", "_", "a", "b", "~"]);
  });

  test("a shorter key sorts before its extensions, including astral ones", async (b) => {
    for (const key of ["ab😀", "ab", "ab\uFFFF", "abc"]) await b.put(key, utf8(key));
    expect(await b.list("")).toEqual(["ab", "abc", "ab\uFFFF", "ab😀"]);
    expect(await scanKeys(b, "ab")).toEqual(["ab", "abc", "ab\uFFFF", "ab😀"]);
  });
}
