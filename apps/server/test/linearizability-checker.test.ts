import { describe, expect, it } from "vitest";
import { checkKvLinearizability, isCasWrite, type KvCasWrite, type KvOperation, type KvRead } from "./support/linearizability.js";

// The checker of test/support/linearizability.ts on hand-made histories (each a small drawing of
// who did what when), and on generated ones: a history produced by a real register is always
// accepted, and the same history with one acknowledged write taken out never is.

type Outcome = number | "failed" | "unknown";

/** A read by `client` over [from, to] ms that returned `seen` ([version, value]) or absent (null). */
function read(client: string, from: number, to: number, seen: [number, string] | null | "failed" | "unknown", key = "k"): KvRead {
  const outcome: KvRead["outcome"] =
    seen === "failed" || seen === "unknown"
      ? { status: seen }
      : { status: "ok", value: seen === null ? null : { version: seen[0], value: seen[1] } };
  return { clientId: client, key, invokedAt: from, respondedAt: to, call: { type: "read" }, outcome };
}

/** A cas-write by `client` over [from, to] ms of `value` expecting `expected`: ok (the new version), failed or unknown. */
function cas(client: string, from: number, to: number, expected: number, value: string, outcome: Outcome, key = "k"): KvCasWrite {
  return {
    clientId: client,
    key,
    invokedAt: from,
    respondedAt: to,
    call: { type: "cas-write", expectedVersion: expected, value },
    outcome: typeof outcome === "number" ? { status: "ok", version: outcome } : { status: outcome },
  };
}

function explanationOf(history: KvOperation[]): string {
  const result = checkKvLinearizability(history);
  expect(result.ok, "expected a violation").toBe(false);
  if (result.ok) throw new Error("unreachable");
  expect(result.inconclusive).toBe(false);
  return result.explanation;
}

describe("valid histories pass", () => {
  it("the empty history, and a sequential one", () => {
    expect(checkKvLinearizability([]).ok).toBe(true);
    const history = [
      read("a", 0, 1, null),
      cas("a", 2, 3, 0, "x", 1),
      read("b", 4, 5, [1, "x"]),
      cas("b", 6, 7, 1, "y", 2),
      cas("a", 8, 9, 1, "z", "failed"),
      read("a", 10, 11, [2, "y"]),
    ];
    expect(checkKvLinearizability(history)).toMatchObject({ ok: true, keys: 1, operations: 6 });
  });

  it("concurrent writers racing on one version: one wins, the other fails, and overlapping reads see either side", () => {
    //   a: |--cas(0,x) ok v1--|
    //   b:    |--cas(0,y) failed--|
    //   c:  |-read absent-|
    //   d:        |-read v1 x-|
    //   e:                          |-read v1 x-| |--cas(1,z) ok v2--|
    //   f:                                          |-read v1 x-|   (overlaps the write of z)
    const history = [
      cas("a", 0, 10, 0, "x", 1),
      cas("b", 2, 12, 0, "y", "failed"),
      read("c", 1, 6, null),
      read("d", 5, 11, [1, "x"]),
      read("e", 13, 14, [1, "x"]),
      cas("e", 15, 25, 1, "z", 2),
      read("f", 16, 20, [1, "x"]),
      read("f", 21, 30, [2, "z"]),
    ];
    expect(checkKvLinearizability(history).ok).toBe(true);
  });

  it("a read that answered before a concurrent write's answer may already see it (the order is not the answers' order)", () => {
    const history = [cas("a", 0, 100, 0, "x", 1), read("b", 10, 20, [1, "x"]), read("c", 30, 40, [1, "x"])];
    expect(checkKvLinearizability(history).ok).toBe(true);
  });

  it("keys are independent registers: each key's versions start at 1", () => {
    const history = [
      cas("a", 0, 10, 0, "a1", 1, "one"),
      cas("b", 0, 10, 0, "b1", 1, "two"),
      read("c", 11, 12, [1, "a1"], "one"),
      read("c", 13, 14, [1, "b1"], "two"),
    ];
    expect(checkKvLinearizability(history)).toMatchObject({ ok: true, keys: 2 });
  });

  it("failed and unanswered reads constrain nothing", () => {
    const history = [cas("a", 0, 1, 0, "x", 1), read("b", 2, 3, "failed"), read("c", 4, 5, "unknown")];
    expect(checkKvLinearizability(history).ok).toBe(true);
  });
});

describe("violations fail, with an explanation naming the key and the anomaly", () => {
  it("a lost write: two acknowledged check-and-set writes from the same version", () => {
    const history = [cas("a", 0, 10, 0, "x", 1), cas("b", 1, 11, 0, "y", 1), read("c", 20, 21, [1, "y"])];
    const explanation = explanationOf(history);
    expect(explanation).toContain('key "k"');
    expect(explanation).toContain("lost write");
  });

  it("a lost write even when the two writes do not overlap", () => {
    const history = [cas("a", 0, 10, 0, "x", 1), cas("b", 20, 30, 0, "y", 1)];
    expect(explanationOf(history)).toContain("two acknowledged check-and-set writes created version 1");
  });

  it("a stale read after a completed write", () => {
    const history = [cas("a", 0, 10, 0, "x", 1), cas("a", 11, 20, 1, "y", 2), read("b", 25, 30, [1, "x"])];
    expect(explanationOf(history)).toContain("stale read");
  });

  it("a read of absent after a completed write", () => {
    const history = [cas("a", 0, 10, 0, "x", 1), read("b", 11, 12, null)];
    expect(explanationOf(history)).toContain("stale read");
  });

  it("a read of a value never written", () => {
    const history = [cas("a", 0, 10, 0, "x", 1), read("b", 5, 15, [1, "ghost"])];
    expect(explanationOf(history)).toContain("no write of this key wrote");
  });

  it("a read of a value before it was written", () => {
    const history = [read("b", 0, 5, [1, "x"]), cas("a", 10, 20, 0, "x", 1)];
    expect(explanationOf(history)).toContain("written only after it answered");
  });

  it("a double-applied check-and-set: its value seen again at the next version", () => {
    const history = [cas("a", 0, 10, 0, "x", 1), read("b", 20, 30, [2, "x"])];
    expect(explanationOf(history)).toContain("applied twice");
  });

  it("a double-applied check-and-set seen only through a later mismatch (no read involved)", () => {
    // Once x is version 1 and nobody else writes, a cas from version 1 cannot fail.
    const history = [cas("a", 0, 10, 0, "x", 1), cas("b", 20, 30, 1, "y", "failed")];
    const explanation = explanationOf(history);
    expect(explanation).toContain("Longest linearizable prefix: 1 of 2");
    expect(explanation).toContain(
      'cas-write(expected 1, "y") → failed [20.0, 30.0] ms: the register holds version 1 = "x", so a check-and-set',
    );
  });

  it("a write missing from the history: a later acknowledged write built on a version nobody created", () => {
    const history = [cas("a", 0, 10, 0, "x", 1), cas("b", 20, 30, 2, "z", 3)];
    expect(explanationOf(history)).toContain("built on version 2, which no acknowledged or unanswered write created");
  });

  it("a version number that skips (an acknowledged write answered with the wrong version)", () => {
    expect(explanationOf([cas("a", 0, 10, 0, "x", 2)])).toContain("created version 2 from expected version 0");
  });

  it("versions out of real-time order: version 2 acknowledged before version 1's write was sent", () => {
    const history = [cas("b", 0, 5, 1, "y", 2), cas("a", 10, 20, 0, "x", 1)];
    expect(explanationOf(history)).toContain("Longest linearizable prefix: 0 of 2");
  });

  it("reports the failing key, not a healthy one", () => {
    const history = [
      cas("a", 0, 10, 0, "a1", 1, "alpha"),
      read("b", 11, 12, [1, "a1"], "alpha"),
      cas("a", 0, 10, 0, "x", 1, "beta"),
      read("b", 11, 12, null, "beta"),
      cas("a", 13, 20, 1, "a2", 2, "gamma"),
    ];
    const result = checkKvLinearizability(history);
    expect(result).toMatchObject({ ok: false, key: "beta" });
  });
});

describe("unknown outcomes may take effect at any moment after they were sent, or never", () => {
  it("an unknown write later seen applied", () => {
    const history = [cas("a", 0, 10, 0, "x", "unknown"), read("b", 50, 60, [1, "x"]), cas("b", 61, 70, 1, "y", 2)];
    expect(checkKvLinearizability(history).ok).toBe(true);
  });

  it("an unknown write never applied", () => {
    const history = [cas("a", 0, 10, 0, "x", "unknown"), read("b", 50, 60, null), cas("b", 61, 70, 0, "y", 1), read("c", 80, 90, [1, "y"])];
    expect(checkKvLinearizability(history).ok).toBe(true);
  });

  it("an unknown write taking effect long after other clients saw the key absent", () => {
    const history = [cas("a", 0, 10, 0, "x", "unknown"), read("b", 20, 30, null), read("b", 40, 50, null), read("c", 60, 70, [1, "x"])];
    expect(checkKvLinearizability(history).ok).toBe(true);
  });

  it("an unknown write that lost its race: the winner's version holds and the unknown one never applies", () => {
    const history = [
      cas("a", 0, 10, 0, "x", "unknown"),
      cas("b", 5, 15, 0, "y", 1),
      read("c", 20, 30, [1, "y"]),
      cas("c", 31, 40, 1, "z", 2),
    ];
    expect(checkKvLinearizability(history).ok).toBe(true);
  });

  it("but not before it was sent", () => {
    const history = [read("b", 0, 5, [1, "x"]), cas("a", 10, 20, 0, "x", "unknown")];
    expect(explanationOf(history)).toContain("written only after it answered");
  });

  it("and not undone once seen", () => {
    const history = [cas("a", 0, 10, 0, "x", "unknown"), read("b", 20, 30, [1, "x"]), read("c", 40, 50, null)];
    expect(explanationOf(history)).toContain("Longest linearizable prefix: 2 of 3");
  });

  it("and not applied twice", () => {
    const history = [cas("a", 0, 10, 0, "x", "unknown"), read("b", 20, 30, [1, "x"]), read("c", 40, 50, [2, "x"])];
    expect(explanationOf(history)).toContain("applied twice");
  });

  it("and not applied where its expected version never held (its value seen anyway)", () => {
    const history = [cas("b", 0, 5, 0, "y", 1), cas("a", 10, 20, 0, "x", "unknown"), read("c", 30, 40, [1, "x"])];
    expect(checkKvLinearizability(history).ok).toBe(false);
  });
});

describe("generated histories", () => {
  it("every history a real register produces passes, and dropping any one acknowledged write from it fails", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const history = simulate(seed, { clients: 6, keys: 2, opsPerKey: 60 });
      const result = checkKvLinearizability(history);
      expect(result, `seed ${seed}`).toMatchObject({ ok: true });
      // an acknowledged write that a later acknowledged write builds on (the last one of a key may go unseen)
      const versions = history.filter(isCasWrite).filter((op) => op.outcome.status === "ok");
      const buildOn = versions.filter((w) =>
        versions.some((x) => x.key === w.key && x.call.expectedVersion === (w.outcome as { version: number }).version),
      );
      const dropped = buildOn[seed % buildOn.length] as KvOperation;
      const mutated = checkKvLinearizability(history.filter((op) => op !== dropped));
      expect(mutated.ok, `seed ${seed}: dropping ${JSON.stringify(dropped)}`).toBe(false);
    }
  });

  it("300 operations per key from 12 concurrent clients, some unknown, decide in well under a second per key", () => {
    const history = simulate(42, { clients: 12, keys: 3, opsPerKey: 300, unknownRate: 0.02 });
    expect(history.some((op) => op.outcome.status === "unknown")).toBe(true);
    const started = performance.now();
    const result = checkKvLinearizability(history);
    const elapsed = performance.now() - started;
    expect(result).toMatchObject({ ok: true, keys: 3, operations: history.length });
    expect(elapsed).toBeLessThan(3000);
  });

  it("a search that exceeds its bound is inconclusive, never a pass", () => {
    const history = simulate(7, { clients: 12, keys: 1, opsPerKey: 300 });
    const result = checkKvLinearizability(history, { maxStates: 10 });
    expect(result).toMatchObject({ ok: false, inconclusive: true });
  });
});

/** mulberry32: a small seeded generator, so a failing seed can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A history of `clients` clients doing read-modify-write with check-and-set on `keys` registers,
 * produced by a real register: each operation takes effect at a random moment inside its window
 * (so the history is linearizable by construction). With `unknownRate`, some writes lose their
 * answer (recorded as unknown, whether they applied or not).
 */
function simulate(seed: number, shape: { clients: number; keys: number; opsPerKey: number; unknownRate?: number }): KvOperation[] {
  const rand = random(seed);
  const total = shape.keys * shape.opsPerKey;
  // Each client's operations back to back, windows of random length and random effect points.
  const planned: { client: number; from: number; at: number; to: number; key: string; isRead: boolean }[] = [];
  const clock = new Array<number>(shape.clients).fill(0);
  const lastRead = new Map<string, number>();
  for (let i = 0; i < total; i++) {
    const client = i % shape.clients;
    const from = (clock[client] as number) + rand() * 2;
    const at = from + rand() * 10;
    const to = at + rand() * 10;
    clock[client] = to;
    const key = `key-${Math.floor(rand() * shape.keys)}`;
    // read-modify-write: a client reads, then writes what it read
    const isRead = lastRead.get(`${client}/${key}`) === undefined || rand() < 0.5;
    planned.push({ client, from, at, to, key, isRead });
    if (isRead) lastRead.set(`${client}/${key}`, 1);
  }
  const registers = new Map<string, { version: number; value: string | null }>();
  const seenVersion = new Map<string, number>();
  const history: KvOperation[] = [];
  planned.sort((x, y) => x.at - y.at);
  planned.forEach(({ client, from, at, to, key, isRead }, n) => {
    const register = registers.get(key) ?? { version: 0, value: null };
    const base = { clientId: `c${client}`, key, invokedAt: from, respondedAt: to };
    if (isRead) {
      history.push({
        ...base,
        call: { type: "read" },
        outcome: { status: "ok", value: register.value === null ? null : { version: register.version, value: register.value } },
      });
      seenVersion.set(`${client}/${key}`, register.version);
      return;
    }
    const expected = seenVersion.get(`${client}/${key}`) ?? 0;
    const value = `c${client}-${n}-${at.toFixed(3)}`;
    const applies = register.version === expected;
    if (applies) registers.set(key, { version: expected + 1, value });
    const outcome: KvCasWrite["outcome"] =
      rand() < (shape.unknownRate ?? 0) ? { status: "unknown" } : applies ? { status: "ok", version: expected + 1 } : { status: "failed" };
    history.push({ ...base, call: { type: "cas-write", expectedVersion: expected, value }, outcome });
  });
  return history;
}
