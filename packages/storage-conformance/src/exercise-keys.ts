import { expect, it } from "vitest";
import { MAX_KEY_BYTES, StorageErrorCode } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { collectScan, scanKeys } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { expectStorageError } from "./expect-storage-error.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { hexOrNull, utf8, utf8Length } from "./utf8.js";

/**
 * Keys that must survive every layer unchanged: SQL wildcards and escapes, quotes, spaces,
 * non-ASCII, astral characters (surrogate pairs in JavaScript), and names that merely look
 * like dot segments.
 */
const SPECIAL_KEYS: readonly [string, string][] = [
  ["percent", "a%b"],
  ["underscore", "a_b"],
  ["backslash", "a\\b"],
  ["single quote", "it's"],
  ["double quote", 'say "hi"'],
  ["spaces", "with space/and more "],
  ["Latin-1 accent", "café/é"],
  ["CJK", "日本/語"],
  ["astral emoji", "😀"],
  ["astral musical symbol", "𝄞/clef𝄞"],
  ["SQL-ish text", "x'; DROP TABLE kv; --"],
  ["dots that are not dot segments", "a/.hidden/..b/.../c."],
  ["only wildcards", "%/_/%_"],
  ["U+2028 and U+FFFD", "line\u2028sep\uFFFD"],
];

/** Key shapes the key rules reject, each with why. */
const INVALID_KEYS: readonly [string, unknown][] = [
  ["empty", ""],
  ["leading slash", "/a"],
  ["trailing slash", "a/"],
  ["empty segment", "a//b"],
  ["dot segment", "a/./b"],
  ["dot-dot segment", "a/../b"],
  ["lone dot", "."],
  ["lone dot-dot", ".."],
  ["NUL", "a\u0000b"],
  ["newline", "a\nb"],
  ["DEL", "\u007f"],
  ["C1 control (NEL)", "\u0085"],
  ["lone high surrogate", "a\ud800"],
  ["lone low surrogate", "\udc00b"],
  ["1025 bytes", "k".repeat(MAX_KEY_BYTES + 1)],
  ["number", 42],
  ["null", null],
  ["undefined", undefined],
];

const INVALID_PREFIXES: readonly [string, string][] = [
  ["leading slash", "/a"],
  ["empty segment", "a//"],
  ["NUL", "a\u0000"],
  ["dot-dot segment", "a/../"],
];

/** A key of exactly `bytes` UTF-8 bytes built from `unit` (padded with ASCII as needed). */
function keyOfBytes(bytes: number, unit: string): string {
  const unitBytes = utf8Length(unit);
  const repeats = Math.floor(bytes / unitBytes);
  const key = unit.repeat(repeats) + "x".repeat(bytes - repeats * unitBytes);
  expect(utf8Length(key)).toBe(bytes);
  return key;
}

async function expectRoundTrip(b: StorageBackend, key: string): Promise<void> {
  const value = utf8(`value of ${key}`);
  await b.put(key, value);
  expect(hexOrNull(await b.get(key)), "get").toBe(hexOrNull(value));
  expect(await b.exists(key), "exists").toBe(true);
  expect(await scanKeys(b, ""), "scan").toEqual([key]);
  await b.delete(key);
  expect(await b.get(key), "get after delete").toBeNull();
  expect(await b.exists(key), "exists after delete").toBe(false);
}

/**
 * Keys: special characters round-trip, `%` and `_` are not wildcards, the length limit in
 * bytes, every invalid shape rejected by every operation with `INVALID_KEY` and nothing
 * written, and prefix validation.
 */
export function exerciseKeys(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), TEST_TIMEOUT_MS);
  };

  for (const [label, key] of SPECIAL_KEYS) {
    test(`a key with ${label} round-trips through put, get, exists, list, scan and delete`, async (b) => {
      await expectRoundTrip(b, key);
      // And it lists under its parent as its last segment.
      await b.put(key, utf8("v"));
      const slash = key.lastIndexOf("/");
      const parent = slash === -1 ? "" : key.slice(0, slash + 1);
      expect(await b.list(parent)).toEqual([key.slice(slash + 1)]);
    });
  }

  test("% is not a wildcard in list, listPage and scan", async (b) => {
    for (const key of ["a%b", "a%c/d", "axb", "a_c", "abc", "ab%"]) await b.put(key, utf8(key));
    expect(await b.list("a%")).toEqual(["b", "c/"]);
    expect(await b.listPage("a%", "", -1)).toEqual(["b", "c/"]);
    expect(await b.listPage("a%", "b", -1)).toEqual(["c/"]);
    expect(await scanKeys(b, "a%")).toEqual(["a%b", "a%c/d"]);
  });

  test("_ is not a wildcard in list, listPage and scan", async (b) => {
    for (const key of ["a_b", "a_c/d", "axb", "a%c", "abc"]) await b.put(key, utf8(key));
    expect(await b.list("a_")).toEqual(["b", "c/"]);
    expect(await b.listPage("a_", "", 1)).toEqual(["b"]);
    expect(await scanKeys(b, "a_")).toEqual(["a_b", "a_c/d"]);
  });

  test("backslash is not an escape character in prefixes", async (b) => {
    for (const key of ["a\\%b", "a\\_c", "a%b", "a_c", "a\\\\d"]) await b.put(key, utf8(key));
    expect(await b.list("a\\")).toEqual(["%b", "\\d", "_c"]);
    expect(await scanKeys(b, "a\\%")).toEqual(["a\\%b"]);
    expect(await scanKeys(b, "a\\_")).toEqual(["a\\_c"]);
  });

  test("keys are case-sensitive", async (b) => {
    await b.put("Key", utf8("upper"));
    await b.put("key", utf8("lower"));
    expect((await b.get("Key"))?.toString()).toBe("upper");
    expect((await b.get("key"))?.toString()).toBe("lower");
    expect(await b.list("")).toEqual(["Key", "key"]);
  });

  test("keys are not Unicode-normalised (NFC and NFD are distinct keys)", async (b) => {
    const nfc = "caf\u00e9";
    const nfd = "cafe\u0301";
    await b.put(nfc, utf8("nfc"));
    await b.put(nfd, utf8("nfd"));
    expect((await b.get(nfc))?.toString()).toBe("nfc");
    expect((await b.get(nfd))?.toString()).toBe("nfd");
    expect(await b.list("")).toEqual([nfd, nfc]);
  });

  test(`the longest key (${MAX_KEY_BYTES} ASCII bytes) is accepted`, async (b) => {
    await expectRoundTrip(b, keyOfBytes(MAX_KEY_BYTES, "k"));
  });

  test(`a ${MAX_KEY_BYTES}-byte key of 2-, 3- and 4-byte characters is accepted`, async (b) => {
    for (const unit of ["é", "日", "😀"]) await expectRoundTrip(b, keyOfBytes(MAX_KEY_BYTES, unit));
  });

  test(`a ${MAX_KEY_BYTES}-byte key with folders lists and scans`, async (b) => {
    const key = `dir/${keyOfBytes(MAX_KEY_BYTES - 4, "日")}`;
    await b.put(key, utf8("v"));
    expect(await b.list("dir/")).toEqual([key.slice(4)]);
    expect(await scanKeys(b, "dir/")).toEqual([key]);
  });

  test(`a key of ${MAX_KEY_BYTES + 1} bytes is rejected, counting bytes not characters`, async (b) => {
    // 341 × "日" is 1023 bytes and 341 UTF-16 units; "é" adds 2 bytes: 1025 bytes, 342 units.
    const multibyte = `${"日".repeat(341)}é`;
    expect(utf8Length(multibyte)).toBe(MAX_KEY_BYTES + 1);
    await expectStorageError(() => b.put(multibyte, utf8("v")), StorageErrorCode.INVALID_KEY);
    await expectStorageError(() => b.put(`${"😀".repeat(256)}x`, utf8("v")), StorageErrorCode.INVALID_KEY);
    expect(await collectScan(b, "")).toEqual([]);
  });

  for (const [label, key] of INVALID_KEYS) {
    test(`an invalid key (${label}) is INVALID_KEY for get, put, delete and exists, and nothing is written`, async (b) => {
      await b.put("sentinel", utf8("s"));
      const bad = key as string;
      await expectStorageError(() => b.put(bad, utf8("v")), StorageErrorCode.INVALID_KEY);
      await expectStorageError(() => b.get(bad), StorageErrorCode.INVALID_KEY);
      await expectStorageError(() => b.delete(bad), StorageErrorCode.INVALID_KEY);
      await expectStorageError(() => b.exists(bad), StorageErrorCode.INVALID_KEY);
      const left = await collectScan(b, "");
      expect(left.map((e) => e.key)).toEqual(["sentinel"]);
    });
  }

  test("invalid keys are rejected inside a transaction too, and nothing is written", async (b) => {
    await b.transaction(async (tx) => {
      for (const [, key] of INVALID_KEYS) {
        await expectStorageError(() => tx.put(key as string, utf8("v")), StorageErrorCode.INVALID_KEY);
      }
    });
    expect(await collectScan(b, "")).toEqual([]);
  });

  for (const [label, prefix] of INVALID_PREFIXES) {
    test(`an invalid prefix (${label}) is INVALID_KEY for list, listPage and scan`, async (b) => {
      await b.put("a/b", utf8("v"));
      await expectStorageError(() => b.list(prefix), StorageErrorCode.INVALID_KEY);
      await expectStorageError(() => b.listPage(prefix, "", 10), StorageErrorCode.INVALID_KEY);
      await expectStorageError(() => collectScan(b, prefix), StorageErrorCode.INVALID_KEY);
    });
  }

  test('valid prefixes: "", "a/", the partial "a/." and "fo"', async (b) => {
    for (const key of ["a/.x", "a/b", "foo", "fob/c"]) await b.put(key, utf8(key));
    expect(await b.list("")).toEqual(["a/", "fob/", "foo"]);
    expect(await b.list("a/")).toEqual([".x", "b"]);
    expect(await b.list("a/.")).toEqual(["x"]);
    expect(await b.list("fo")).toEqual(["b/", "o"]);
    expect(await b.listPage("fo", "b/", 0)).toEqual(["o"]);
    expect(await scanKeys(b, "a/.")).toEqual(["a/.x"]);
  });

  test("a key equal to the listed prefix is not its own child (no empty entry)", async (b) => {
    await b.put("fo", utf8("leaf"));
    await b.put("foo", utf8("v"));
    expect(await b.list("fo")).toEqual(["o"]);
    expect(await b.listPage("fo", "", -1)).toEqual(["o"]);
    // scan is a plain string-prefix match, so it does include the key itself.
    expect(await scanKeys(b, "fo")).toEqual(["fo", "foo"]);
  });
}
