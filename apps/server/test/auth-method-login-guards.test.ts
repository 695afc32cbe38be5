import { describe, expect, it } from "vitest";
import { HashLimiter } from "../src/auth-methods/hash-limiter.js";
import { LoginLockout } from "../src/auth-methods/login-lockout.js";
import { VaultError } from "../src/http/vault-error.js";

/** A hash that runs until released, so the test decides when slots free up. */
function gate() {
  let release = () => {};
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { release, run: () => done };
}

const settle = async <T>(promise: Promise<T>) =>
  promise.then(
    () => "ran",
    (error: unknown) => (error instanceof VaultError ? error.status : "other"),
  );

describe("HashLimiter", () => {
  it("one client flooding a full queue loses its newest places to other clients, who then get their turn", async () => {
    const limiter = new HashLimiter({ concurrency: 1, maxQueue: 4 });
    const g = gate();
    const flood = Array.from({ length: 5 }, () => settle(limiter.run(g.run, "attacker")));
    // 1 running, 4 waiting: a sixth from the same client is refused at once.
    expect(await settle(limiter.run(g.run, "attacker"))).toBe(429);
    // Another client takes the attacker's newest waiting place instead of being refused.
    const alice = settle(limiter.run(async () => undefined, "alice"));
    const bob = settle(limiter.run(async () => undefined, "bob"));
    g.release();
    const results = await Promise.all([...flood, alice, bob]);
    expect(results.slice(5)).toEqual(["ran", "ran"]);
    expect(results.slice(0, 5).filter((result) => result === 429)).toHaveLength(2);
    expect(results.slice(0, 5).filter((result) => result === "ran")).toHaveLength(3);
  });

  it("behind one address (a proxy), a full queue refuses newcomers: plain FIFO", async () => {
    const limiter = new HashLimiter({ concurrency: 1, maxQueue: 2 });
    const g = gate();
    const first = [settle(limiter.run(g.run, "proxy")), settle(limiter.run(g.run, "proxy")), settle(limiter.run(g.run, "proxy"))];
    expect(await settle(limiter.run(g.run, "proxy"))).toBe(429);
    g.release();
    expect(await Promise.all(first)).toEqual(["ran", "ran", "ran"]);
  });

  it("a client never takes a place from one that holds no more than it would", async () => {
    const limiter = new HashLimiter({ concurrency: 1, maxQueue: 1 });
    const g = gate();
    const held = [settle(limiter.run(g.run, "a")), settle(limiter.run(g.run, "b"))];
    // a and b hold one place each: c (which would hold one) may not take either.
    expect(await settle(limiter.run(g.run, "c"))).toBe(429);
    g.release();
    expect(await Promise.all(held)).toEqual(["ran", "ran"]);
  });
});

describe("LoginLockout", () => {
  // The lockout lasts minutes: its clock is injected here (the e2e test checks it on a real server).
  it("locks a name out after 5 failures within the window, for 15 minutes; a success clears the count", () => {
    let now = 1_000_000;
    const lockout = new LoginLockout({ now: () => now });
    for (let i = 0; i < 4; i++) lockout.recordFailure("m\u0000alice");
    expect(lockout.isLocked("m\u0000alice")).toBe(false);
    lockout.recordSuccess("m\u0000alice");
    for (let i = 0; i < 4; i++) lockout.recordFailure("m\u0000alice");
    expect(lockout.isLocked("m\u0000alice")).toBe(false);
    lockout.recordFailure("m\u0000alice");
    expect(lockout.isLocked("m\u0000alice")).toBe(true);
    expect(lockout.isLocked("m\u0000bob")).toBe(false);
    now += 15 * 60_000 - 1;
    expect(lockout.isLocked("m\u0000alice")).toBe(true);
    now += 2;
    expect(lockout.isLocked("m\u0000alice")).toBe(false);
  });

  it("forgets failures older than the counter reset, and tracks at most maxTracked names", () => {
    let now = 0;
    const lockout = new LoginLockout({ now: () => now, maxTracked: 3 });
    for (let i = 0; i < 4; i++) lockout.recordFailure("a");
    now += 15 * 60_000 + 1;
    lockout.recordFailure("a");
    expect(lockout.isLocked("a")).toBe(false);
    for (const name of ["b", "c", "d"]) for (let i = 0; i < 5; i++) lockout.recordFailure(name);
    // "a" was the least recently failed: forgotten; the three others are locked.
    expect(["b", "c", "d"].map((name) => lockout.isLocked(name))).toEqual([true, true, true]);
    for (let i = 0; i < 5; i++) lockout.recordFailure("e");
    expect(lockout.isLocked("b")).toBe(false);
    expect(lockout.isLocked("e")).toBe(true);
  });
});
