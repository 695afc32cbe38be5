import type { TokenEntry } from "./token-store.js";

/**
 * Vault's `framework.CalculateTTL` for a renewal: a periodic token gets its period (capped by
 * the server's maximum), up to its explicit maximum if any; another gets `incrementMs` or its
 * creation TTL, up to its creation time plus the smaller of its explicit maximum and
 * `maxTtlMs`. The limit is measured in milliseconds from the token's own creation time (the
 * same clock as its stored expiry: Vault truncates the creation time to the second because it
 * stores it so, which would take up to a second off a token's maximum here); the TTL granted
 * is then a whole number of seconds, rounded down, and is what the caller reports.
 */
export function renewalTtlMs(
  entry: TokenEntry,
  incrementMs: number,
  maxTtlMs: number,
  now: number,
): { ok: true; ttlMs: number; warnings: string[] } | { ok: false; reason: "past-max"; message: string } {
  const second = (ms: number) => Math.floor(ms / 1000) * 1000;
  const start = entry.createdAt;
  const explicitMs = explicitMaxTtlMs(entry);
  const maxMs = explicitMs > 0 && explicitMs < maxTtlMs ? explicitMs : maxTtlMs;
  const warnings: string[] = [];
  let ttlMs: number;
  let maxValid: number | null;
  const period = entry.periodMs ?? 0;
  if (period > 0) {
    ttlMs = Math.min(period, maxMs);
    maxValid = explicitMs > 0 ? start + explicitMs : null;
  } else {
    ttlMs = incrementMs > 0 ? incrementMs : entry.creationTtlMs;
    maxValid = start + maxMs;
  }
  if (maxValid !== null) {
    const left = maxValid - now;
    if (left <= 0) return { ok: false, reason: "past-max", message: "past the max TTL, cannot renew" };
    if (ttlMs > left) {
      warnings.push(
        `TTL of "${second(ttlMs) / 1000}s" exceeded the effective max_ttl of "${second(left) / 1000}s"; TTL value is capped accordingly`,
      );
      ttlMs = left;
    }
  }
  ttlMs = Math.max(1000, second(ttlMs));
  return { ok: true, ttlMs, warnings };
}

/** The explicit maximum TTL of `entry` (ms from its creation), 0 for none. */
export function explicitMaxTtlMs(entry: TokenEntry): number {
  return entry.maxExpiresAt === null ? 0 : entry.maxExpiresAt - entry.createdAt;
}
