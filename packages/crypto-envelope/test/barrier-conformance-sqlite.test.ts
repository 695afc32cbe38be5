import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeStorageConformance } from "@egide/storage-conformance";
import { DEFAULT_MAX_VALUE_BYTES } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { VALUE_RECORD_OVERHEAD } from "../src/internal.js";
import type { SealManager, SealManagerOptions } from "../src/index.js";
import { openSealedStack } from "./support/sealed-stack.js";

// The barrier must be a storage backend like any other: the whole shared suite runs through it,
// over SQLite as production configures it (a WAL file) and over an in-memory database. Every
// test gets a fresh database, initialised (1 of 1) and unsealed. The barrier offers what the
// SQLite backend offers, getMany and the change feed, so their cases run through it too (with
// reservations of 3 below, keyring writes happen amid the feed's cases and must not show).

/** The barrier's default plaintext limit: the encrypted record still fits the backend's default. */
const BARRIER_MAX_VALUE_BYTES = DEFAULT_MAX_VALUE_BYTES - VALUE_RECORD_OVERHEAD;

const dir = mkdtempSync(join(tmpdir(), "egide-barrier-conformance-"));
let files = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A seal manager and the barrier over it, as a configuration created them. */
type Opened = { seal: SealManager; barrier: StorageBackend };

/** Initialises `raw` (1 of 1), unseals it and returns the barrier over it. */
async function openBarrier(raw: StorageBackend, seal: SealManagerOptions = {}, opened?: Opened[]): Promise<StorageBackend> {
  const stack = await openSealedStack({ raw, seal });
  for (const share of stack.shares) share.fill(0);
  opened?.push({ seal: stack.seal, barrier: stack.barrier });
  return stack.barrier;
}

describeStorageConformance({
  name: "barrier over sqlite (file, WAL)",
  create: () => openBarrier(SqliteBackend.open({ path: join(dir, `wal-${++files}.sqlite`) })),
  maxValueBytes: BARRIER_MAX_VALUE_BYTES,
  capabilities: { getMany: true, changeFeed: true },
});

describeStorageConformance({
  name: "barrier over sqlite (:memory:)",
  create: () => openBarrier(SqliteBackend.open({ path: ":memory:" })),
  maxValueBytes: BARRIER_MAX_VALUE_BYTES,
  capabilities: { getMany: true, changeFeed: true },
});

// Reservations of 3 encryptions and a rotation every 40: reservations (keyring transactions of
// the raw backend) happen every few writes, and automatic rotations in the middle of the
// suite's tests, concurrent writes and transactions included.
const churning: Opened[] = [];
const CHURN: SealManagerOptions = { encryptionsPerReservation: 3, rotateAfterEncryptions: 40 };

describeStorageConformance({
  name: "barrier over sqlite (file, WAL), reservations of 3, rotation every 40 encryptions",
  create: () => openBarrier(SqliteBackend.open({ path: join(dir, `churn-${++files}.sqlite`) }), CHURN, churning),
  maxValueBytes: BARRIER_MAX_VALUE_BYTES,
  capabilities: { getMany: true, changeFeed: true },
});

// Runs after the configuration above (tests of a file run in order): the churn really happened.
// Most of the suite's tests write fewer than 40 values; those that write many (the differential
// test, large scans, concurrency) rotate several times.
describe("barrier over sqlite, reservations of 3, rotation every 40 encryptions", () => {
  it("rotated automatically during the suite", () => {
    expect(churning.length).toBeGreaterThan(50);
    // Still unsealed (the seal manager outlives its closed backend), so the keyring is readable.
    const terms = churning.map((opened) => opened.seal.keyStatus().term);
    expect(terms.filter((term) => term > 1).length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...terms)).toBeGreaterThan(5);
  });
});
