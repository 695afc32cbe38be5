import { describe, expect, it } from "vitest";
import { renewalTtlMs } from "../src/auth/token-renewal-ttl.js";
import type { TokenEntry } from "../src/auth/token-store.js";

// The renewal limit is measured on the token's own clock (milliseconds since its creation), the
// clock its stored expiry uses: truncating the creation time to the second took up to a second
// off a token's explicit maximum (a renewal 2.2 s into a 3 s maximum was refused whenever the
// token was created late in a second; seen as a flaky end-to-end test).

function entry(createdAt: number, explicitMaxMs: number, creationTtlMs = 2000): TokenEntry {
  return {
    accessor: "a",
    policies: ["default"],
    displayName: "token",
    meta: {},
    createdAt,
    creationTtlMs,
    expiresAt: createdAt + creationTtlMs,
    maxExpiresAt: explicitMaxMs > 0 ? createdAt + explicitMaxMs : null,
    renewable: true,
    parentAccessor: null,
  };
}

describe("renewalTtlMs", () => {
  it("renews within the explicit maximum wherever in its second the token was created", () => {
    for (const offset of [0, 1, 250, 500, 800, 999]) {
      const created = 1_000_000 + offset;
      const granted = renewalTtlMs(entry(created, 3000), 3_600_000, 86_400_000, created + 2200);
      expect(granted, `created at +${offset} ms`).toMatchObject({ ok: true, ttlMs: 1000 });
      expect(renewalTtlMs(entry(created, 3000), 3_600_000, 86_400_000, created + 3000), `+${offset}`).toMatchObject({ ok: false });
    }
  });

  it("grants whole seconds, rounded down, never past the maximum", () => {
    const created = 5_000_700;
    expect(renewalTtlMs(entry(created, 10_000), 3_600_000, 86_400_000, created + 1300)).toMatchObject({ ok: true, ttlMs: 8000 });
    expect(renewalTtlMs(entry(created, 0), 4000, 60_000, created + 100)).toMatchObject({ ok: true, ttlMs: 4000, warnings: [] });
    expect(renewalTtlMs(entry(created, 0), 120_000, 60_000, created + 100)).toMatchObject({ ok: true, ttlMs: 59_000 });
  });
});
