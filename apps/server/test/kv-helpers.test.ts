import { describe, expect, it } from "vitest";
import { VaultError } from "../src/http/vault-error.js";
import { mergePatch } from "../src/kv/json-merge-patch.js";
import { parseVersionList, parseBoolean } from "../src/kv/kv-input.js";
import { parseKvRoute } from "../src/kv/kv-paths.js";
import { goDuration, parseDurationSeconds, vaultTimestamp } from "../src/kv/kv-time.js";

describe("vaultTimestamp", () => {
  it("prints Go's RFC3339Nano (trailing zeros of the fraction dropped)", () => {
    expect(vaultTimestamp(Date.parse("2018-03-22T02:24:06.945Z"))).toBe("2018-03-22T02:24:06.945Z");
    expect(vaultTimestamp(Date.parse("2018-03-22T02:24:06.900Z"))).toBe("2018-03-22T02:24:06.9Z");
    expect(vaultTimestamp(Date.parse("2018-03-22T02:24:06.000Z"))).toBe("2018-03-22T02:24:06Z");
  });
});

describe("durations", () => {
  it("formats seconds like Go's time.Duration", () => {
    expect(goDuration(0)).toBe("0s");
    expect(goDuration(45)).toBe("45s");
    expect(goDuration(90)).toBe("1m30s");
    expect(goDuration(3600)).toBe("1h0m0s");
    expect(goDuration(12319)).toBe("3h25m19s");
    expect(goDuration(-1)).toBe("-1s");
  });

  it("parses seconds and Go duration strings", () => {
    expect(parseDurationSeconds(30, "f")).toBe(30);
    expect(parseDurationSeconds("30", "f")).toBe(30);
    expect(parseDurationSeconds("3h25m19s", "f")).toBe(12319);
    expect(parseDurationSeconds("1.5h", "f")).toBe(5400);
    expect(parseDurationSeconds("2d", "f")).toBe(172800);
    expect(parseDurationSeconds("1500ms", "f")).toBe(1);
    expect(parseDurationSeconds("", "f")).toBe(0);
    expect(parseDurationSeconds("0", "f")).toBe(0);
    expect(parseDurationSeconds("-1s", "f", true)).toBe(-1);
    for (const bad of ["abc", "1x", "h", true, {}, "-5"]) expect(() => parseDurationSeconds(bad, "f")).toThrow(VaultError);
  });
});

describe("inputs", () => {
  it("reads versions as Vault's TypeCommaIntSlice", () => {
    expect(parseVersionList([1, "2"])).toEqual([1, 2]);
    expect(parseVersionList("1,2, 3")).toEqual([1, 2, 3]);
    expect(parseVersionList(4)).toEqual([4]);
    expect(parseVersionList(undefined)).toEqual([]);
    expect(() => parseVersionList(["a"])).toThrow(VaultError);
    expect(() => parseVersionList([true])).toThrow(VaultError);
  });

  it("reads booleans as Go's ParseBool", () => {
    expect(parseBoolean("true", "b")).toBe(true);
    expect(parseBoolean("0", "b")).toBe(false);
    expect(() => parseBoolean("yes", "b")).toThrow(VaultError);
  });
});

describe("mergePatch (RFC 7386 examples)", () => {
  const cases: Array<[unknown, unknown, unknown]> = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [
      ["a", "b"],
      ["c", "d"],
      ["c", "d"],
    ],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(cases)("%j + %j", (target, patch, expected) => {
    expect(mergePatch(target, patch)).toEqual(expected);
  });

  it("does not modify its inputs", () => {
    const target = { a: { b: 1 } };
    mergePatch(target, { a: { b: 2 } });
    expect(target).toEqual({ a: { b: 1 } });
  });
});

describe("parseKvRoute", () => {
  it("follows Vault's path patterns", () => {
    expect(parseKvRoute("config")).toEqual({ kind: "config" });
    expect(parseKvRoute("data/a/b")).toEqual({ kind: "data", path: "a/b" });
    expect(parseKvRoute("data/")).toBeNull();
    expect(parseKvRoute("data/a/")).toBeNull();
    expect(parseKvRoute("metadata/")).toEqual({ kind: "metadata", path: "" });
    expect(parseKvRoute("metadata/a/")).toEqual({ kind: "metadata", path: "a/" });
    expect(parseKvRoute("destroy/x")).toEqual({ kind: "destroy", path: "x" });
    expect(parseKvRoute("subkeys/x")).toEqual({ kind: "subkeys", path: "x" });
    expect(parseKvRoute("foo")).toBeNull();
    expect(parseKvRoute("")).toBeNull();
    expect(parseKvRoute("config/")).toBeNull();
  });
});
