import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareKeys, prefixSuccessor } from "../src/index.js";

const bytes = (s: string) => Buffer.from(s, "utf8");
// Characters from every UTF-8 length class, and the edges that trip UTF-16 comparison.
const char = fc.oneof(
  fc.constantFrom("a", "/", "0", "\u007e", "é", "\ud7ff", "\ue000", "\uffff", "😀", "\u{10ffff}", "\u{10000}"),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }),
);
const key = fc.array(char, { maxLength: 6 }).map((chars) => chars.join(""));

describe("compareKeys", () => {
  it("orders like Buffer.compare of the UTF-8 bytes", () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(Math.sign(compareKeys(a, b))).toBe(Math.sign(Buffer.compare(bytes(a), bytes(b))));
      }),
      { numRuns: 5000 },
    );
  });

  it("puts astral characters after U+E000–U+FFFF, unlike JavaScript's sort", () => {
    const keys = ["😀", "\uffff", "\ue000", "z"];
    expect([...keys].sort()).toEqual(["z", "😀", "\ue000", "\uffff"]);
    expect([...keys].sort(compareKeys)).toEqual(["z", "\ue000", "\uffff", "😀"]);
  });
});

describe("prefixSuccessor", () => {
  it("bounds exactly the strings that start with the prefix", () => {
    fc.assert(
      fc.property(key, key, (prefix, other) => {
        const upper = prefixSuccessor(prefix);
        const inRange = compareKeys(other, prefix) >= 0 && (upper === null || compareKeys(other, upper) < 0);
        expect(inRange).toBe(other.startsWith(prefix));
      }),
      { numRuns: 5000 },
    );
  });

  it("handles the edges", () => {
    expect(prefixSuccessor("")).toBeNull();
    expect(prefixSuccessor("a/")).toBe("a0");
    expect(prefixSuccessor("a\ud7ff")).toBe("a\ue000");
    expect(prefixSuccessor("a\u{10ffff}")).toBe("b");
    expect(prefixSuccessor("\u{10ffff}\u{10ffff}")).toBeNull();
  });
});
