import { Command } from "commander";
import { describe, expect, test } from "vitest";
import { parseTimeBound } from "../src/input/parse-time-bound.js";
import { normalizeSingleDashOptions } from "../src/normalize-single-dash-options.js";

// The argument parsers, in process.

describe("normalizeSingleDashOptions", () => {
  const program = new Command("egide").version("1", "-V, --version");
  program.command("kv").command("put").option("--cas <n>").option("--format <f>");
  program.command("token").command("create").option("--explicit-max-ttl <d>");

  test("rewrites Vault's single-dash long options it knows, in both value forms", () => {
    expect(normalizeSingleDashOptions(["kv", "put", "-cas=1", "-format", "json", "secret/a", "k=v"], program)).toEqual([
      "kv",
      "put",
      "--cas=1",
      "--format",
      "json",
      "secret/a",
      "k=v",
    ]);
    expect(normalizeSingleDashOptions(["token", "create", "-explicit-max-ttl=1h"], program)).toEqual([
      "token",
      "create",
      "--explicit-max-ttl=1h",
    ]);
    expect(normalizeSingleDashOptions(["-version"], program)).toEqual(["--version"]);
    expect(normalizeSingleDashOptions(["kv", "put", "-help"], program)).toEqual(["kv", "put", "--help"]);
  });

  test("leaves short flags, unknown names, values and everything after -- alone", () => {
    expect(normalizeSingleDashOptions(["-V", "-h", "-bogus", "-", "k=-", "-1"], program)).toEqual(["-V", "-h", "-bogus", "-", "k=-", "-1"]);
    expect(normalizeSingleDashOptions(["kv", "put", "--", "-cas=1"], program)).toEqual(["kv", "put", "--", "-cas=1"]);
  });
});

describe("parseTimeBound", () => {
  const now = () => Date.parse("2025-06-01T12:00:00Z");

  test("durations count back from now", () => {
    expect(parseTimeBound("1h", now)).toBe("2025-06-01T11:00:00.000Z");
    expect(parseTimeBound("1h30m", now)).toBe("2025-06-01T10:30:00.000Z");
    expect(parseTimeBound("2d", now)).toBe("2025-05-30T12:00:00.000Z");
    expect(parseTimeBound("90s", now)).toBe("2025-06-01T11:58:30.000Z");
  });

  test("RFC 3339 times (and dates) are taken as they are, in UTC", () => {
    expect(parseTimeBound("2025-01-02T03:04:05Z", now)).toBe("2025-01-02T03:04:05.000Z");
    expect(parseTimeBound("2025-01-02T03:04:05+02:00", now)).toBe("2025-01-02T01:04:05.000Z");
    expect(parseTimeBound("2025-01-02", now)).toBe("2025-01-02T00:00:00.000Z");
  });

  test("anything else is refused", () => {
    for (const bad of ["yesterday", "1y", "", "2025-13-01T00:00:00Z", "-1h", "1h 30m"])
      expect(() => parseTimeBound(bad, now), bad).toThrow(/expected a duration/);
  });
});
