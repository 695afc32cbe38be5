import { describe, expect, it } from "vitest";
import { ConfigError, ConfigReader, parseDuration } from "../src/index.js";

describe("parseDuration", () => {
  it.each([
    ["10s", 10_000],
    ["10m", 600_000],
    ["5s", 5000],
    ["250ms", 250],
    ["1h30m", 5_400_000],
    ["1.5s", 1500],
    ["2d", 172_800_000],
    [" 30s ", 30_000],
    [1200, 1200],
  ])("parses %j", (text, ms) => {
    expect(parseDuration(text, "x")).toBe(ms);
  });

  it.each(["", "10", "s", "10x", "-5s", "5s extra", "1e3s", -1, Number.NaN, null])("rejects %j naming the option", (bad) => {
    expect(() => parseDuration(bad, "storage.sqlite.busy_timeout")).toThrow(/^storage\.sqlite\.busy_timeout: /);
    try {
      parseDuration(bad, "o");
    } catch (error) {
      expect(ConfigError.isInstance(error)).toBe(true);
      expect((error as ConfigError).code).toBe("INVALID_CONFIG");
    }
  });
});

describe("ConfigReader", () => {
  it("reads typed options with defaults", () => {
    const config = new ConfigReader({ a: "x", n: 5, b: true, mode: "wal", t: "2s" }, "storage.test");
    expect(config.string("a")).toBe("x");
    expect(config.integer("n", 1, { min: 1, max: 10 })).toBe(5);
    expect(config.boolean("b", false)).toBe(true);
    expect(config.oneOf("mode", ["WAL", "DELETE"], "DELETE")).toBe("WAL");
    expect(config.duration("t", "1s")).toBe(2000);
    expect(config.integer("missing", 7)).toBe(7);
    expect(() => config.finish()).not.toThrow();
  });

  it("names the option in every error", () => {
    const config = new ConfigReader({ n: 0, s: 3, m: "zzz", f: 1.5 }, "storage.test");
    expect(() => config.integer("n", 1, { min: 1 })).toThrow("storage.test.n: must be at least 1, got 0");
    expect(() => config.string("s")).toThrow("storage.test.s: must be a string");
    expect(() => config.oneOf("m", ["A", "B"], "A")).toThrow(/storage\.test\.m: must be one of "A", "B"/);
    expect(() => config.integer("f", 1)).toThrow(/storage\.test\.f: must be a whole number/);
  });

  it("rejects options nobody read, so typos are not ignored", () => {
    const config = new ConfigReader({ journal_mod: "WAL" }, "storage.sqlite");
    config.string("path");
    expect(() => config.finish()).toThrow("unknown option storage.sqlite.journal_mod");
  });

  it("rejects a table that is not a table", () => {
    expect(() => new ConfigReader("x", "storage.sqlite")).toThrow("storage.sqlite: must be a table");
  });
});
