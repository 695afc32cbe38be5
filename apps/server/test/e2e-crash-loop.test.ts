import { expect, test } from "vitest";
import { runCrashLoop, type CrashLoopSummary } from "../scripts/crash-loop/crash-loop.mjs";

// The short version of the server crash loop (`pnpm soak:crash` runs hundreds of cycles): a real
// server process (the built dist/bin/egide-server.js) under 16 writers of unique secrets and 6
// check-and-set clients, SIGKILLed 100-800 ms into the load, restarted on the same storage (it
// unseals itself from its key file), and checked after every restart: every acknowledged write
// reads back at its version with its value, each counter's version is its acknowledged CAS writes
// (plus at most those in flight at the kill), every acknowledged request has its audit row, and
// SQLite's integrity_check on the file between the kill and the restart is ok. The loop itself is
// scripts/crash-loop/, shared with the script.

/** The figures a run must show, with every problem it found listed (so a failure says what). */
function expectClean(summary: CrashLoopSummary, cycles: number): void {
  expect([...summary.results.flatMap((result) => result.problems), ...summary.finalProblems]).toEqual([]);
  expect({
    lost: summary.lost,
    mismatched: summary.mismatched,
    unaudited: summary.unaudited,
    integrityFailures: summary.integrityFailures,
  }).toEqual({
    lost: 0,
    mismatched: 0,
    unaudited: 0,
    integrityFailures: 0,
  });
  expect(summary.cycles).toBe(cycles);
  // The loop must have had something to lose: writes acknowledged in most cycles (a kill early in
  // a cold server's first requests may come before any answer, on a busy machine more often),
  // CAS increments acknowledged, and every acknowledged write read back once more at the end.
  expect(summary.results.filter((result) => result.acked > 0).length).toBeGreaterThanOrEqual(Math.ceil(cycles / 2));
  expect(summary.casAcked).toBeGreaterThan(0);
  expect(summary.finalChecked).toBe(summary.ackedWrites);
  expect(Object.values(summary.counters).reduce((a, b) => a + b, 0)).toBe(summary.casAcked + summary.casUnknownApplied);
}

test("SQLite: 20 SIGKILLs under load lose nothing acknowledged, leave nothing unaudited, and the file stays intact", async () => {
  const summary = await runCrashLoop({ storage: "sqlite", cycles: 20 });
  expectClean(summary, 20);
  expect(summary.integrityChecks).toBe(20);
}, 120_000);

test("PostgreSQL: 8 SIGKILLs under load lose nothing acknowledged and leave nothing unaudited", async () => {
  const summary = await runCrashLoop({ storage: "postgresql", cycles: 8 });
  expectClean(summary, 8);
}, 60_000);
