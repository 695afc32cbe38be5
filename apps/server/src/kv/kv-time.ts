import { badRequest } from "../http/vault-error.js";

/**
 * A time as Vault prints it: Go's RFC 3339 with nanoseconds (`time.RFC3339Nano`), in UTC. Go
 * drops trailing zeros of the fraction (and the fraction itself when it is zero), so a time
 * with millisecond precision prints exactly as Go would print it:
 * `2018-03-22T02:24:06.945Z`, `2018-03-22T02:24:06.9Z`, `2018-03-22T02:24:06Z`.
 */
export function vaultTimestamp(ms: number): string {
  const iso = new Date(ms).toISOString();
  // "YYYY-MM-DDTHH:MM:SS.mmmZ"
  const dot = iso.lastIndexOf(".");
  if (dot < 0) return iso;
  const fraction = iso.slice(dot + 1, -1).replace(/0+$/, "");
  return fraction === "" ? `${iso.slice(0, dot)}Z` : `${iso.slice(0, dot)}.${fraction}Z`;
}

/** The instant of a {@link vaultTimestamp} in milliseconds, or null for "" (never). */
export function parseVaultTimestamp(text: string): number | null {
  if (text === "") return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * A whole number of seconds as Go's `time.Duration.String()` prints it: `0s`, `45s`, `1m30s`,
 * `3h25m19s`, `1h0m0s`, `-1s`. Vault answers `delete_version_after` this way.
 */
export function goDuration(seconds: number): string {
  if (seconds === 0) return "0s";
  if (seconds < 0) return `-${goDuration(-seconds)}`;
  const s = Math.trunc(seconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  if (hours > 0) return `${hours}h${minutes}m${secs}s`;
  if (minutes > 0) return `${minutes}m${secs}s`;
  return `${secs}s`;
}

const GO_UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  μs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
};
const GO_DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)/gy;

/**
 * Parses a duration field the way Vault's `TypeDurationSecond` does: a number of seconds (JSON
 * number or numeric string), or a Go duration string (`"3h25m19s"`, `"90s"`, `"1.5h"`, and
 * `"7d"`). Returns whole seconds (truncated). Negative values are refused unless
 * `allowNegative` (`TypeSignedDurationSecond`). Anything else is a 400 naming `field`.
 */
export function parseDurationSeconds(value: unknown, field: string, allowNegative = false): number {
  const invalid = () =>
    badRequest(
      `error converting input ${JSON.stringify(value)} for field "${field}": not a duration (seconds, or a duration such as "30m" or "3h25m19s")`,
    );
  let seconds: number;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw invalid();
    seconds = Math.trunc(value);
  } else if (typeof value === "string") {
    const text = value.trim();
    if (text === "") {
      seconds = 0;
    } else if (/^[-+]?\d+$/.test(text)) {
      seconds = Number.parseInt(text, 10);
    } else {
      let rest = text;
      let sign = 1;
      if (rest.startsWith("-") || rest.startsWith("+")) {
        if (rest.startsWith("-")) sign = -1;
        rest = rest.slice(1);
      }
      if (rest === "0") {
        seconds = 0;
      } else {
        GO_DURATION_PART.lastIndex = 0;
        let total = 0;
        let consumed = 0;
        for (let match = GO_DURATION_PART.exec(rest); match !== null; match = GO_DURATION_PART.exec(rest)) {
          total += Number(match[1]) * (GO_UNIT_SECONDS[match[2] as string] as number);
          consumed = GO_DURATION_PART.lastIndex;
        }
        if (consumed === 0 || consumed !== rest.length) throw invalid();
        // Round away floating-point noise (0.1h = 360s) before truncating.
        seconds = sign * Math.trunc(Math.round(total * 1e6) / 1e6);
      }
    }
  } else {
    throw invalid();
  }
  if (!Number.isSafeInteger(seconds)) throw invalid();
  if (seconds < 0 && !allowNegative) {
    throw badRequest(`error converting input ${JSON.stringify(value)} for field "${field}": cannot provide negative value`);
  }
  return seconds;
}
