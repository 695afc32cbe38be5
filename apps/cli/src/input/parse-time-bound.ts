import { InvalidArgumentError } from "commander";

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;
const RFC3339 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?$/;

/**
 * A bound of a time range (`audit list --since/--until`): a duration back from `now`
 * (`1h` is an hour ago; `90m`, `1h30m`, `2d`, `1w`), or an RFC 3339 time
 * (`2025-06-01T12:00:00Z`; a date alone is its midnight UTC). Returns it as RFC 3339 in UTC.
 */
export function parseTimeBound(value: string, now: () => number = Date.now): string {
  const text = value.trim();
  if (DURATION.test(text)) {
    let ms = 0;
    for (const match of text.matchAll(DURATION_PART)) ms += Number(match[1]) * (UNIT_MS[match[2] as string] ?? 0);
    return new Date(now() - ms).toISOString();
  }
  if (RFC3339.test(text)) {
    const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text.replace(" ", "T"));
    if (!Number.isNaN(date.getTime())) return date.toISOString();
  }
  throw new InvalidArgumentError("expected a duration back from now (1h, 30m, 2d) or an RFC 3339 time (2025-06-01T12:00:00Z)");
}
