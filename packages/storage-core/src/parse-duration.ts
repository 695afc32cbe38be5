import { ConfigError } from "./config-error.js";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

/**
 * Parses a configuration duration ("10s", "10m", "1h30m", "250ms", "1.5s") into milliseconds.
 * A number is taken as milliseconds. Anything else, negative or non-finite, is a
 * {@link ConfigError} naming `option`.
 */
export function parseDuration(value: unknown, option: string): number {
  if (typeof value === "number") {
    if (Number.isFinite(value) && value >= 0) return value;
    throw new ConfigError("INVALID_CONFIG", `must be a non-negative duration, got ${value}`, { option });
  }
  if (typeof value !== "string" || value.trim() === "") {
    throw new ConfigError("INVALID_CONFIG", `must be a duration such as "10s" or "5m"`, { option });
  }
  const text = value.trim();
  PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let match = PART.exec(text); match !== null; match = PART.exec(text)) {
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    consumed = PART.lastIndex;
  }
  if (consumed !== text.length) {
    throw new ConfigError("INVALID_CONFIG", `${JSON.stringify(value)} is not a duration (use ms, s, m, h or d, e.g. "10s")`, { option });
  }
  return total;
}
