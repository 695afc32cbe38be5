import { badRequest } from "../http/vault-error.js";

/** The request header that asks for response wrapping, as Vault names it. */
export const WRAP_TTL_HEADER = "x-vault-wrap-ttl";

/** The shortest wrap TTL accepted: a wrapping token's TTL is reported in whole seconds. */
export const MIN_WRAP_TTL_MS = 1000;

// A header or policy value longer than this is not a duration anyone meant.
const MAX_DURATION_TEXT = 64;

// Go's time.ParseDuration units, and Vault's "d" (days), in milliseconds.
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
// One "<number><unit>" part. Sticky and anchored by the loop below: each character is looked at
// a bounded number of times, whatever the input (no backtracking over the whole text).
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)/y;

/**
 * A duration as Vault's `parseutil.ParseDurationSecond` reads it, in milliseconds (possibly
 * negative): a number of seconds (a JSON number or an integer string), or a Go duration string
 * (`"5m"`, `"1h30m"`, `"1.5h"`, `"7d"`). Throws an `Error` whose message is Go's
 * (`time: invalid duration "x"`) for anything else.
 */
export function durationSecondMs(value: unknown): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`time: invalid duration ${JSON.stringify(String(value))}`);
    return Math.trunc(value) * 1000;
  }
  if (typeof value !== "string") throw new Error("could not parse duration from input");
  const invalid = () => new Error(`time: invalid duration ${JSON.stringify(value.slice(0, MAX_DURATION_TEXT))}`);
  if (value === "" || value.length > MAX_DURATION_TEXT) throw invalid();
  if (/^[-+]?\d+$/.test(value)) return Number.parseInt(value, 10) * 1000;
  let rest = value;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest.startsWith("-")) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  let total = 0;
  let at = 0;
  while (at < rest.length) {
    DURATION_PART.lastIndex = at;
    const match = DURATION_PART.exec(rest);
    if (match === null) throw invalid();
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    at = DURATION_PART.lastIndex;
  }
  if (at === 0 || !Number.isFinite(total)) throw invalid();
  return sign * Math.round(total);
}

/**
 * The wrap TTL a request asks for with `X-Vault-Wrap-TTL`, in milliseconds; `undefined` when
 * the header is absent or empty (as in Vault). Refused (400, Vault's messages): a value that is
 * not a duration, a negative one, and, stricter than Vault (which answers unwrapped), zero or
 * less than a second: a wrap TTL never means "forever" or "not wrapped".
 */
export function parseWrapTtlHeader(header: string | string[] | undefined): number | undefined {
  if (header === undefined || header === "") return undefined;
  const text = Array.isArray(header) ? header.join(", ") : header;
  let ms: number;
  try {
    ms = durationSecondMs(text);
  } catch (error) {
    throw badRequest(`error parsing X-Vault-Wrap-TTL header: ${(error as Error).message}`);
  }
  if (ms < 0) throw badRequest("error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative");
  if (ms < MIN_WRAP_TTL_MS) throw badRequest("error parsing X-Vault-Wrap-TTL header: requested wrap ttl must be at least 1s");
  if (!Number.isSafeInteger(ms)) throw badRequest("error parsing X-Vault-Wrap-TTL header: requested wrap ttl is too large");
  return ms;
}
