import { describe, expect, test } from "vitest";
import { formatDuration } from "../src/output/format-duration.js";
import { formatTable } from "../src/output/format-table.js";
import { formatValue } from "../src/output/format-value.js";

// The human output's building blocks, in process.

describe("formatters", () => {
  test("formatDuration shows TTLs as Vault does", () => {
    expect(formatDuration(0)).toBe("∞");
    expect(formatDuration(45)).toBe("45s");
    expect(formatDuration(3600)).toBe("1h");
    expect(formatDuration(5400)).toBe("1h30m");
    expect(formatDuration(2_764_800)).toBe("768h");
    expect(formatDuration(3599)).toBe("59m59s");
  });

  test("formatValue and formatTable", () => {
    expect(formatValue(null)).toBe("n/a");
    expect(formatValue(["a", "b"])).toBe("[a b]");
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
    expect(
      formatTable(
        ["Key", "Value"],
        [
          ["a", "1"],
          ["longer", "two\nlines"],
        ],
      ),
    ).toBe("Key       Value\n---       -----\na         1\nlonger    two\\nlines\n");
  });
});
