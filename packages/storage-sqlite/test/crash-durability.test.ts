import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { SqliteBackend } from "../src/index.js";
import { operationAt, parseWorkloadKey, valueFor } from "./fixtures/crash-workload.mjs";

const WRITER = fileURLToPath(new URL("./fixtures/crash-writer.mjs", import.meta.url));
const ROUNDS = 24;
const KILL_AFTER_MS = { min: 30, max: 250 };

// Every round re-checks every earlier round's keys; deriving each value once keeps that linear.
const expectedValues = new Map<string, Buffer>();
function expectedValue(key: string): Buffer {
  let value = expectedValues.get(key);
  if (value === undefined) {
    value = valueFor(key);
    expectedValues.set(key, value);
  }
  return value;
}

/** What one killed writer acknowledged, and how it ended. */
interface WriterRun {
  /** The highest sequence number acknowledged; acknowledgements arrive in order from 1. */
  lastAcked: number;
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/**
 * Runs the writer for one round and SIGKILLs it `killAfterMs` after it printed "ready" (or at
 * its first acknowledgement, should it have none by then, so that every round dies mid-writes).
 */
function runWriter(file: string, round: number, killAfterMs: number): Promise<WriterRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, file, String(round)], { stdio: ["ignore", "pipe", "pipe"] });
    let pending = "";
    let stderr = "";
    let lastAcked = 0;
    let protocolError: Error | undefined;
    let killDue = false;
    const kill = () => child.kill("SIGKILL");
    // A writer that never gets going must not hang the test.
    const watchdog = setTimeout(kill, 15_000);
    const onLine = (line: string) => {
      if (line === "ready") {
        setTimeout(() => {
          if (lastAcked > 0) kill();
          else killDue = true;
        }, killAfterMs);
        return;
      }
      const ack = JSON.parse(line) as { seq: number; kind: string; keys: string[] };
      const expected = operationAt(round, lastAcked + 1);
      if (ack.seq !== lastAcked + 1 || ack.kind !== expected.kind || JSON.stringify(ack.keys) !== JSON.stringify(expected.keys)) {
        protocolError ??= new Error(`round ${round}: unexpected acknowledgement ${line} after seq ${lastAcked}`);
      }
      lastAcked = ack.seq;
      if (killDue) kill();
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      const lines = (pending + chunk).split("\n");
      // A line without its newline is not an acknowledgement (yet).
      pending = lines.pop() ?? "";
      for (const line of lines) onLine(line);
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(watchdog);
      if (protocolError) reject(protocolError);
      else resolve({ lastAcked, signal, code, stderr });
    });
  });
}

/** What the replay of every round's acknowledged operations says the database must hold. */
interface Expectation {
  /** Keys acknowledged as written and not acknowledged as deleted since. */
  present: Set<string>;
  /** Keys of the operation in flight at a kill, which may or may not have happened. */
  undecided: Set<string>;
}

function replay(lastAcked: ReadonlyMap<number, number>): Expectation {
  const present = new Set<string>();
  const undecided = new Set<string>();
  for (const [round, last] of lastAcked) {
    for (let seq = 1; seq <= last; seq++) {
      const op = operationAt(round, seq);
      for (const key of op.keys) {
        if (op.kind === "delete") present.delete(key);
        else present.add(key);
      }
    }
    // The writer awaits each operation, so at most the next one was under way.
    const inFlight = operationAt(round, last + 1);
    for (const key of inFlight.keys) {
      if (inFlight.kind !== "delete") undecided.add(key);
      else if (present.delete(key)) undecided.add(key);
    }
  }
  return { present, undecided };
}

/** How the database fared, for the test's summary line. */
interface Verification {
  keys: number;
  transactions: number;
  inFlightLanded: number;
}

/**
 * Reopens `file` and checks it against the acknowledgements: every acknowledged key holds its
 * exact bytes, nothing unacknowledged-as-written is there, every transaction present is whole,
 * and SQLite's own integrity check passes. Returns counts; throws (via expect) on a violation.
 */
async function verifyDatabase(file: string, lastAcked: ReadonlyMap<number, number>): Promise<Verification> {
  const { present, undecided } = replay(lastAcked);
  const problems: string[] = [];
  const transactions = new Map<string, number>();
  let keys = 0;
  let inFlightLanded = 0;
  const backend = SqliteBackend.open({ path: file });
  try {
    for (const key of present) {
      const value = await backend.get(key);
      if (value === null) problems.push(`acknowledged key ${key} is missing`);
      else if (!value.equals(expectedValue(key))) problems.push(`acknowledged key ${key} holds other bytes (${value.length} bytes)`);
    }
    const seen = new Set<string>();
    for await (const { key, value } of backend.scan("")) {
      keys++;
      seen.add(key);
      const parsed = parseWorkloadKey(key);
      if (!parsed) {
        problems.push(`unexpected key ${key}`);
        continue;
      }
      if (!value.equals(expectedValue(key))) problems.push(`key ${key} holds other bytes (${value.length} bytes)`);
      if (!present.has(key) && !undecided.has(key)) problems.push(`key ${key} is present but was never acknowledged, or was deleted`);
      if (undecided.has(key)) inFlightLanded++;
      if (parsed.tx) {
        const id = `${parsed.round}/${parsed.seq}`;
        transactions.set(id, (transactions.get(id) ?? 0) + 1);
      }
    }
    for (const key of present) if (!seen.has(key)) problems.push(`acknowledged key ${key} is missing from a scan`);
    // Every transaction that left any trace, acknowledged or cut off by the kill, is whole.
    for (const [id, count] of transactions) {
      const [round, seq] = id.split("/").map(Number) as [number, number];
      const size = operationAt(round, seq).keys.length;
      if (count !== size) problems.push(`transaction r${round}/tx${seq} is torn: ${count} of ${size} keys`);
    }
  } finally {
    await backend.close();
  }
  expect(problems.slice(0, 20), `${problems.length} problem(s) in ${file}`).toEqual([]);

  const db = new Database(file);
  try {
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
  } finally {
    db.close();
  }
  return { keys, transactions: transactions.size, inFlightLanded };
}

/**
 * Copies what a killed writer left on disk (database and WAL) so the parent can check it
 * without checkpointing the original: the next writer must recover from the untouched files.
 */
function snapshot(file: string, dir: string): string {
  mkdirSync(dir);
  const copy = join(dir, "egide.db");
  copyFileSync(file, copy);
  if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`);
  return copy;
}

describe("crash durability", () => {
  it(`a SIGKILLed writer loses nothing it acknowledged (${ROUNDS} kills)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "egide-crash-"));
    try {
      const file = join(dir, "egide.db");
      const lastAcked = new Map<number, number>();
      let acknowledged = 0;
      let walLeft = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        const killAfterMs = KILL_AFTER_MS.min + Math.random() * (KILL_AFTER_MS.max - KILL_AFTER_MS.min);
        const run = await runWriter(file, round, killAfterMs);
        const context = `round ${round} (kill after ${killAfterMs.toFixed(0)} ms), stderr: ${run.stderr}`;
        // Killed mid-writes, not exited nor crashed.
        expect(run.signal, context).toBe("SIGKILL");
        expect(run.lastAcked, context).toBeGreaterThan(0);
        lastAcked.set(round, run.lastAcked);
        acknowledged += run.lastAcked;
        if (existsSync(`${file}-wal`)) walLeft++;
        const copy = snapshot(file, join(dir, `check-${round}`));
        await verifyDatabase(copy, lastAcked);
        rmSync(join(dir, `check-${round}`), { recursive: true, force: true });
      }
      // The next writer always reopened a database with a killed writer's WAL beside it.
      expect(walLeft).toBe(ROUNDS);
      const final = await verifyDatabase(file, lastAcked);
      console.info(
        `crash durability: ${ROUNDS} kills, ${acknowledged} acknowledged operations, ` +
          `${final.keys} keys and ${final.transactions} transactions verified, ` +
          `${final.inFlightLanded} key(s) of operations in flight at a kill landed`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
