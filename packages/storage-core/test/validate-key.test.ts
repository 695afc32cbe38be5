import { describe, expect, it } from "vitest";
import {
  InvalidKeyError,
  MAX_KEY_BYTES,
  StorageError,
  StorageErrorCode,
  ValueTooLargeError,
  validateKey,
  validateListPage,
  validatePrefix,
  validateValue,
} from "../src/index.js";

const invalidKeys: Array<[string, unknown]> = [
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
  ["C1 control", "a\u0085"],
  ["lone high surrogate", "a\ud800"],
  ["lone low surrogate", "\udc00b"],
  ["too long", "a".repeat(MAX_KEY_BYTES + 1)],
  ["too long in multi-byte characters", `${"é".repeat(MAX_KEY_BYTES / 2)}a`],
  ["not a string", 42],
];

describe("validateKey", () => {
  it.each(invalidKeys)("rejects a key with %s", (_, key) => {
    expect(() => validateKey(key, "test")).toThrow(InvalidKeyError);
    try {
      validateKey(key, "test");
    } catch (error) {
      expect(StorageError.isInstance(error, StorageErrorCode.INVALID_KEY)).toBe(true);
      expect((error as Error).message).toMatch(/^test: invalid key/);
    }
  });

  it.each([
    "a",
    "a/b/c",
    "a%b_c\\d'e\"f g",
    "日本/😀/𝄞",
    ".hidden/..dots/...",
    "a".repeat(MAX_KEY_BYTES),
    "é".repeat(MAX_KEY_BYTES / 2),
    "😀".repeat(MAX_KEY_BYTES / 4),
  ])("accepts %j", (key) => {
    expect(() => validateKey(key)).not.toThrow();
  });
});

describe("validatePrefix", () => {
  it.each(["", "a", "a/", "a/b/", "a/.", "fo", "a/.."])("accepts %j", (prefix) => {
    expect(() => validatePrefix(prefix)).not.toThrow();
  });

  it.each(["/a", "a//", "a\u0000", "./a", "a/../b/", 7])("rejects %j", (prefix) => {
    expect(() => validatePrefix(prefix)).toThrow(InvalidKeyError);
  });
});

describe("validateListPage", () => {
  it("rejects a non-string cursor and a fractional limit", () => {
    expect(() => validateListPage("a/", 1, 0)).toThrow(TypeError);
    expect(() => validateListPage("a/", "", 1.5)).toThrow(TypeError);
    expect(() => validateListPage("a/", "", -1)).not.toThrow();
  });
});

describe("validateValue", () => {
  it("accepts up to the limit and rejects one byte more with VALUE_TOO_LARGE", () => {
    expect(() => validateValue(new Uint8Array(10), 10)).not.toThrow();
    expect(() => validateValue(new Uint8Array(11), 10)).toThrow(ValueTooLargeError);
    try {
      validateValue(new Uint8Array(11), 10, "test");
    } catch (error) {
      expect(StorageError.isInstance(error, StorageErrorCode.VALUE_TOO_LARGE)).toBe(true);
      expect(error).toMatchObject({ size: 11, limit: 10, retryable: false });
    }
  });

  it("rejects a string value", () => {
    expect(() => validateValue("secret", 10)).toThrow(TypeError);
  });
});

describe("validateKey's ASCII fast path", () => {
  it("accepts exactly what the full check accepts", async () => {
    const fc = (await import("fast-check")).default;
    const { validatePrefix: fullCheckOfPrefix } = await import("../src/index.js");
    // A key is valid iff it is a valid prefix whose last segment is complete, i.e. the full
    // check as used for prefixes plus the last-segment rules, which the fast path also decides.
    const ascii = fc.string({ unit: fc.constantFrom("a", "/", ".", " ", "~", "-", "0"), maxLength: 8 });
    fc.assert(
      fc.property(ascii, (key) => {
        let fast = true;
        try {
          validateKey(key);
        } catch {
          fast = false;
        }
        const segments = key.split("/");
        let full = key.length > 0 && !key.startsWith("/");
        for (const s of segments) if (s === "" || s === "." || s === "..") full = false;
        if (full) expect(() => fullCheckOfPrefix(key)).not.toThrow();
        expect(fast).toBe(full);
      }),
      { numRuns: 20000 },
    );
  });
});
