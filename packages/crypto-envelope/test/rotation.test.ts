import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StorageErrorCode } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, describe, expect, test } from "vitest";
import { KEYRING_KEY, REWRAP_PROGRESS_KEY, SealErrorCode, SealManager, barrier, isReservedKey } from "../src/index.js";
import type { KeyStatus, SealManagerOptions } from "../src/index.js";
import { openSealedStack } from "./support/sealed-stack.js";
import type { SealedStack } from "./support/sealed-stack.js";
import { expectRejectedStorageError as expectStorageError, expectSealError } from "./support/expect-errors.js";

// ---- helpers ---------------------------------------------------------------------------------

const opened: StorageBackend[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  for (const backend of opened.splice(0)) await backend.close();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function stack(seal: SealManagerOptions = {}): Promise<SealedStack> {
  const result = await openSealedStack({ seal });
  opened.push(result.raw);
  return result;
}

/** Two raw backends on one SQLite file (two processes), a manager on each, both unsealed. */
async function twoProcesses(options: SealManagerOptions = {}): Promise<{
  rawA: StorageBackend;
  rawB: StorageBackend;
  a: SealManager;
  b: SealManager;
  barrierA: StorageBackend;
  barrierB: StorageBackend;
  share: Buffer;
}> {
  const dir = mkdtempSync(join(tmpdir(), "egide-rotation-"));
  tempDirs.push(dir);
  const path = join(dir, "egide.db");
  const rawA = SqliteBackend.open({ path });
  opened.push(rawA);
  const rawB = SqliteBackend.open({ path });
  opened.push(rawB);
  const a = await SealManager.open(rawA, options);
  const { shares } = await a.initialize({ shares: 1, threshold: 1 });
  const share = shares[0] as Buffer;
  const b = await SealManager.open(rawB, options);
  await a.unseal(share);
  await b.unseal(share);
  return { rawA, rawB, a, b, barrierA: barrier(rawA, a), barrierB: barrier(rawB, b), share };
}

/** The key version in a raw value record's header (bytes 2..5, big-endian). */
function headerVersion(record: Buffer | null): number {
  if (record === null) throw new Error("record is missing");
  expect(record[0]).toBe(0x01); // format
  expect(record[1]).toBe(0x01); // value record
  return record.readUInt32BE(2);
}

/** Bytes 66.. of a value record: value nonce, ciphertext and tag, which a rewrap must not touch. */
function valuePart(record: Buffer): Buffer {
  return Buffer.from(record.subarray(66));
}

async function rawRecords(raw: StorageBackend): Promise<Map<string, Buffer>> {
  const records = new Map<string, Buffer>();
  for await (const entry of raw.scan("")) if (!isReservedKey(entry.key)) records.set(entry.key, Buffer.from(entry.value));
  return records;
}

/** How many raw records carry each key version. */
async function recordsPerVersion(raw: StorageBackend): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (const record of (await rawRecords(raw)).values()) {
    const version = headerVersion(record);
    counts.set(version, (counts.get(version) ?? 0) + 1);
  }
  return counts;
}

function encryptionsOf(status: KeyStatus, version: number): number {
  const info = status.versions.find((v) => v.version === version);
  if (!info) throw new Error(`no version ${version} in ${JSON.stringify(status)}`);
  return info.encryptions;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function valueFor(key: string, round = 0): Buffer {
  return Buffer.from(`value of ${key} (round ${round})`);
}

async function putMany(secured: StorageBackend, count: number, prefix = "r/"): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = `${prefix}${String(i).padStart(3, "0")}`;
    await secured.put(key, valueFor(key));
    keys.push(key);
  }
  return keys;
}

// ---- rotate ----------------------------------------------------------------------------------

describe("rotate", () => {
  test("adds version 2 as active, keeps version 1 for decryption, and new writes carry version 2", async () => {
    const { raw, seal, barrier: secured } = await stack();
    const before = await putMany(secured, 5, "old/");
    for (const key of before) expect(headerVersion(await raw.get(key))).toBe(1);

    const status = await seal.rotate();
    expect(status.term).toBe(2);
    expect(status.versions.map((v) => [v.version, v.state])).toEqual([
      [1, "decrypt"],
      [2, "active"],
    ]);
    expect(seal.keyStatus()).toEqual(status);
    expect(status.installTime).toBe(status.versions[1]?.createdAt);

    for (const key of before) expect(await secured.get(key)).toEqual(valueFor(key));
    await secured.put("new/plain", Buffer.from("after rotation"));
    await secured.transaction(async (tx) => tx.put("new/in-tx", Buffer.from("after rotation, in a transaction")));
    expect(headerVersion(await raw.get("new/plain"))).toBe(2);
    expect(headerVersion(await raw.get("new/in-tx"))).toBe(2);
    // Overwriting an old record moves it to the new version.
    await secured.put("old/000", Buffer.from("rewritten"));
    expect(headerVersion(await raw.get("old/000"))).toBe(2);
    expect(await secured.get("old/000")).toEqual(Buffer.from("rewritten"));
    expect(headerVersion(await raw.get("old/001"))).toBe(1);

    const third = await seal.rotate();
    expect(third.term).toBe(3);
    expect(third.versions.map((v) => v.state)).toEqual(["decrypt", "decrypt", "active"]);
    await secured.put("newer", Buffer.from("v3"));
    expect(headerVersion(await raw.get("newer"))).toBe(3);
    // Everything still reads back, across all three versions.
    expect(await secured.get("old/001")).toEqual(valueFor("old/001"));
    expect(await secured.get("new/plain")).toEqual(Buffer.from("after rotation"));
    expect(await secured.get("newer")).toEqual(Buffer.from("v3"));
  });

  test("the rotation is stored: a fresh manager unsealing the same storage sees term 2", async () => {
    const { raw, seal, barrier: secured, shares } = await stack();
    await seal.rotate();
    await secured.put("k", Buffer.from("v"));
    seal.seal();
    const again = await SealManager.open(raw);
    await again.unseal(shares[0] as Buffer);
    expect(again.keyStatus().term).toBe(2);
    expect(await barrier(raw, again).get("k")).toEqual(Buffer.from("v"));
  });
});

// ---- encryption counts -----------------------------------------------------------------------

describe("encryption counts and automatic rotation", () => {
  test("counts are reserved before use: after N sequential puts keyStatus counts at least N", async () => {
    const reservation = 7;
    const { raw, seal, barrier: secured, shares } = await stack({ encryptionsPerReservation: reservation });
    const initial = seal.keyStatus().encryptions;
    expect(initial).toBe(reservation); // unsealing reserves the first block
    for (let n = 1; n <= 30; n++) {
      await secured.put(`k/${n}`, Buffer.from(`v${n}`));
      const counted = seal.keyStatus().encryptions;
      expect(counted, `after ${n} puts`).toBeGreaterThanOrEqual(n);
      expect(counted, `after ${n} puts`).toBeLessThanOrEqual(n + reservation);
    }
    // The stored keyring (what another process or a restart sees) holds the count as well.
    const other = await SealManager.open(raw, { encryptionsPerReservation: reservation });
    await other.unseal(shares[0] as Buffer);
    expect(encryptionsOf(other.keyStatus(), 1)).toBeGreaterThanOrEqual(30 + reservation);
  });

  test("writes of a transaction past the reservation are recorded by the next reservation", async () => {
    const reservation = 5;
    const { raw, seal, barrier: secured, shares } = await stack({ encryptionsPerReservation: reservation });
    // One transaction writes 12 values on a reservation of 5 (documented: it may overdraw).
    await secured.transaction(async (tx) => {
      for (let i = 0; i < 12; i++) await tx.put(`tx/${String(i).padStart(2, "0")}`, Buffer.from(`v${i}`));
    });
    // The next write outside reserves again, and that reservation must record the overdraft.
    await secured.put("after", Buffer.from("after"));
    const records = (await recordsPerVersion(raw)).get(1) ?? 0;
    expect(records).toBe(13);
    expect(seal.keyStatus().encryptions).toBeGreaterThanOrEqual(13);
    // And the stored keyring says so, not only this process's copy.
    const fresh = await SealManager.open(raw);
    await fresh.unseal(shares[0] as Buffer);
    expect(encryptionsOf(fresh.keyStatus(), 1)).toBeGreaterThanOrEqual(13);
  });

  // A transaction's overdraft is recorded by the next reservation under the version it was
  // made under, even when this process adopted another process's rotation in between
  // (a regression test: the overdraft used to be added to the newly adopted version).
  test("an overdraft made under version 1 is counted under version 1 even when a rotation is adopted first", async () => {
    const { rawA, a, b, barrierA, barrierB, share } = await twoProcesses({ encryptionsPerReservation: 5 });
    await barrierB.transaction(async (tx) => {
      for (let i = 0; i < 12; i++) await tx.put(`b/${String(i).padStart(2, "0")}`, Buffer.from(`v${i}`));
    });
    await a.rotate();
    await barrierA.put("a/after-rotation", Buffer.from("v2"));
    expect(await barrierB.get("a/after-rotation")).toEqual(Buffer.from("v2")); // B adopts term 2
    await barrierB.put("b/after", Buffer.from("B reserves again, with its debt"));

    const fresh = await SealManager.open(rawA);
    await fresh.unseal(share);
    const stored = fresh.keyStatus();
    const perVersion = await recordsPerVersion(rawA);
    expect(perVersion.get(1)).toBe(12);
    expect(encryptionsOf(stored, 1), JSON.stringify(stored.versions)).toBeGreaterThanOrEqual(12);
    expect(b.keyStatus().term).toBe(2);
  });

  test("rotateAfterEncryptions 50: 200 puts rotate several times, no version passes 50, everything reads back", async () => {
    const { raw, seal, barrier: secured } = await stack({ rotateAfterEncryptions: 50, encryptionsPerReservation: 10 });
    const keys: string[] = [];
    for (let i = 0; i < 200; i++) {
      const key = `auto/${String(i).padStart(3, "0")}`;
      await secured.put(key, valueFor(key));
      keys.push(key);
    }
    const status = seal.keyStatus();
    expect(status.term).toBeGreaterThan(1);
    expect(status.term).toBeGreaterThanOrEqual(4); // 200 encryptions need at least 4 versions of 50
    for (const info of status.versions) expect(info.encryptions, `version ${info.version}`).toBeLessThanOrEqual(50);
    expect(status.versions.filter((v) => v.state === "active")).toHaveLength(1);
    expect(status.versions.reduce((sum, v) => sum + v.encryptions, 0)).toBeGreaterThanOrEqual(200);

    // The records themselves: no version wrapped more values than the keyring counted for it.
    const perVersion = await recordsPerVersion(raw);
    for (const [version, count] of perVersion) {
      expect(count, `records under version ${version}`).toBeLessThanOrEqual(encryptionsOf(status, version));
      expect(count, `records under version ${version}`).toBeLessThanOrEqual(50);
    }
    for (const key of keys) expect(await secured.get(key)).toEqual(valueFor(key));
  });

  // Regression: in commit 3ed34e6, barrier.put awaited the shared single-flight reservation and
  // then encrypted unconditionally, so 200 concurrent puts all went out under one block of 10
  // (200 records under version 1, 20 counted, the limit of 50 passed).
  test("concurrent puts never overdraw the reservation: counts cover every record and the limit holds", async () => {
    const { raw, seal, barrier: secured } = await stack({ rotateAfterEncryptions: 50, encryptionsPerReservation: 10 });
    await Promise.all(Array.from({ length: 200 }, (_, i) => secured.put(`c/${String(i).padStart(3, "0")}`, Buffer.from(`v${i}`))));
    const status = seal.keyStatus();
    const perVersion = await recordsPerVersion(raw);
    const report = [...perVersion]
      .map(([version, count]) => `v${version}: ${count} records, ${encryptionsOf(status, version)} counted`)
      .join("; ");
    for (const [version, count] of perVersion) {
      expect(count, report).toBeLessThanOrEqual(encryptionsOf(status, version));
      expect(count, report).toBeLessThanOrEqual(50);
    }
  });
});

// ---- rewrap ----------------------------------------------------------------------------------

describe("rewrap", () => {
  test("moves every record to the active version, leaving bytes 66.. (value nonce, ciphertext, tag) identical", async () => {
    const { raw, seal, barrier: secured } = await stack();
    const keys = await putMany(secured, 37);
    await secured.put("empty", Buffer.alloc(0));
    const before = await rawRecords(raw);
    expect(before.size).toBe(38);
    for (const record of before.values()) expect(headerVersion(record)).toBe(1);

    await seal.rotate();
    const report = await seal.rewrap();
    expect(report).toEqual({ targetVersion: 2, examined: 38, rewrapped: 38, resumedAfter: null, complete: true });

    const after = await rawRecords(raw);
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [key, record] of after) {
      const old = before.get(key) as Buffer;
      expect(headerVersion(record), key).toBe(2);
      expect(record.byteLength).toBe(old.byteLength);
      expect(valuePart(record).equals(valuePart(old)), `value part of ${key}`).toBe(true);
      // The DEK wrap (nonce, wrapped DEK, tag) is new.
      expect(record.subarray(6, 66).equals(old.subarray(6, 66)), `wrap of ${key}`).toBe(false);
    }
    for (const key of keys) expect(await secured.get(key)).toEqual(valueFor(key));
    expect(await secured.get("empty")).toEqual(Buffer.alloc(0));

    // Nothing left to do.
    const again = await seal.rewrap();
    expect(again).toMatchObject({ targetVersion: 2, examined: 38, rewrapped: 0, complete: true });
    expect(await rawRecords(raw)).toEqual(after);
  });

  test("is resumable: aborted after the first batch, a second call resumes and completes", async () => {
    const { raw, seal, barrier: secured } = await stack();
    const count = 45;
    const keys = await putMany(secured, count);
    const before = await rawRecords(raw);
    await seal.rotate();

    const controller = new AbortController();
    const progress: Array<{ rewrapped: number; examined: number }> = [];
    const first = await seal.rewrap({
      batchSize: 10,
      signal: controller.signal,
      onProgress: (p) => {
        progress.push({ rewrapped: p.rewrapped, examined: p.examined });
        controller.abort();
      },
    });
    expect(progress).toEqual([{ rewrapped: 10, examined: 10 }]);
    expect(first).toMatchObject({ targetVersion: 2, complete: false, resumedAfter: null, rewrapped: 10 });
    expect(await raw.exists(REWRAP_PROGRESS_KEY)).toBe(true);
    const halfway = await recordsPerVersion(raw);
    expect(halfway.get(2)).toBe(10);
    expect(halfway.get(1)).toBe(count - 10);
    // Everything reads back mid-way, under either version.
    for (const key of keys) expect(await secured.get(key)).toEqual(valueFor(key));

    const batches: number[] = [];
    const second = await seal.rewrap({ batchSize: 10, onProgress: (p) => batches.push(p.rewrapped) });
    expect(second.resumedAfter).not.toBeNull();
    expect(second.resumedAfter).toBe(keys[9]);
    expect(second.complete).toBe(true);
    expect(second.examined).toBe(count - 10);
    expect(first.rewrapped + second.rewrapped).toBe(count);
    expect(batches).toEqual([10, 20, 30, 35]);

    const after = await rawRecords(raw);
    for (const [key, record] of after) {
      expect(headerVersion(record)).toBe(2);
      expect(valuePart(record).equals(valuePart(before.get(key) as Buffer))).toBe(true);
    }
    for (const key of keys) expect(await secured.get(key)).toEqual(valueFor(key));

    // A completed pass is not resumed: the next call starts from the beginning.
    const third = await seal.rewrap({ batchSize: 10 });
    expect(third).toMatchObject({ resumedAfter: null, complete: true, rewrapped: 0, examined: count });
  });

  test("a record overwritten while a rewrap runs, or between its calls, is not clobbered", async () => {
    const { raw, seal, barrier: secured } = await stack();
    const keys = await putMany(secured, 40);
    await seal.rotate();

    // Overwrite a record of a later batch of the same call from inside onProgress of the first
    // batch: the scan (one snapshot on :memory:) still holds its old version-1 record, so only
    // reading it again inside the batch's transaction keeps the new value.
    const mid = keys[15] as string;
    const late = keys[35] as string;
    const early = keys[2] as string;
    const pending: Array<Promise<void>> = [];
    const controller = new AbortController();
    let batch = 0;
    const first = await seal.rewrap({
      batchSize: 10,
      signal: controller.signal,
      onProgress: () => {
        batch++;
        if (batch === 1) {
          pending.push(secured.put(mid, Buffer.from("overwritten before its batch")));
          pending.push(secured.put(late, Buffer.from("overwritten during the rewrap")));
          pending.push(secured.put(early, Buffer.from("overwritten after its batch")));
        }
        if (batch === 2) controller.abort();
      },
    });
    await Promise.all(pending);
    expect(first.complete).toBe(false);

    // Between the two calls, overwrite one record not reached yet and delete another.
    const between = keys[30] as string;
    const deleted = keys[31] as string;
    await secured.put(between, Buffer.from("overwritten between calls"));
    await secured.delete(deleted);
    const second = await seal.rewrap({ batchSize: 10 });
    expect(second.complete).toBe(true);

    expect(await secured.get(mid)).toEqual(Buffer.from("overwritten before its batch"));
    expect(await secured.get(late)).toEqual(Buffer.from("overwritten during the rewrap"));
    expect(await secured.get(early)).toEqual(Buffer.from("overwritten after its batch"));
    expect(await secured.get(between)).toEqual(Buffer.from("overwritten between calls"));
    expect(await secured.get(deleted)).toBeNull();
    expect(await raw.exists(deleted)).toBe(false);
    for (const key of keys) {
      if ([mid, late, early, between, deleted].includes(key)) continue;
      expect(await secured.get(key)).toEqual(valueFor(key));
    }
    // Three records were rewritten under version 2 before the rewrap reached them and one was
    // deleted: the rewrap moved the other 36 (the early one was rewrapped, then overwritten).
    expect(first.rewrapped).toBe(19);
    expect(first.rewrapped + second.rewrapped).toBe(36);
    for (const version of (await recordsPerVersion(raw)).keys()) expect(version).toBe(2);
  });

  test("rejects a batch size that is not a positive integer", async () => {
    const { seal } = await stack();
    for (const batchSize of [0, -1, 1.5]) {
      await expect(seal.rewrap({ batchSize })).rejects.toBeInstanceOf(RangeError);
    }
  });
});

// ---- another process rotates -----------------------------------------------------------------

describe("two processes on one SQLite file", () => {
  test("B reads a value A wrote after rotating, reloading the keyring (outside and inside transactions)", async () => {
    const { a, b, barrierA, barrierB, rawB } = await twoProcesses();
    await barrierA.put("before", Buffer.from("written under version 1"));
    expect(await barrierB.get("before")).toEqual(Buffer.from("written under version 1"));

    expect((await a.rotate()).term).toBe(2);
    await barrierA.put("after/1", Buffer.from("written under version 2"));
    expect(headerVersion(await rawB.get("after/1"))).toBe(2);
    expect(b.keyStatus().term).toBe(1);
    expect(await barrierB.get("after/1")).toEqual(Buffer.from("written under version 2"));
    expect(b.keyStatus().term).toBe(2);
    expect(b.keyStatus().versions.map((v) => v.state)).toEqual(["decrypt", "active"]);
    // B's next writes follow the new active version.
    await barrierB.put("from-b", Buffer.from("B after reload"));
    expect(headerVersion(await rawB.get("from-b"))).toBe(2);
    expect(await barrierA.get("from-b")).toEqual(Buffer.from("B after reload"));

    // Inside a read-write transaction of B: the reload reads through the transaction.
    expect((await a.rotate()).term).toBe(3);
    await barrierA.put("after/2", Buffer.from("written under version 3"));
    const inTx = await barrierB.transaction(async (tx) => {
      const value = await tx.get("after/2");
      await tx.put("b/tx", Buffer.from("B in a transaction"));
      return value;
    });
    expect(inTx).toEqual(Buffer.from("written under version 3"));
    expect(b.keyStatus().term).toBe(3);

    // Inside a read-only transaction.
    expect((await a.rotate()).term).toBe(4);
    await barrierA.put("after/3", Buffer.from("written under version 4"));
    const readOnly = await barrierB.transaction(async (tx) => tx.get("after/3"), { readOnly: true });
    expect(readOnly).toEqual(Buffer.from("written under version 4"));
    expect(b.keyStatus().term).toBe(4);

    // Through a scan.
    expect((await a.rotate()).term).toBe(5);
    await barrierA.put("after/4", Buffer.from("written under version 5"));
    const scanned: Record<string, string> = {};
    for await (const entry of barrierB.scan("after/")) scanned[entry.key] = entry.value.toString();
    expect(scanned).toEqual({
      "after/1": "written under version 2",
      "after/2": "written under version 3",
      "after/3": "written under version 4",
      "after/4": "written under version 5",
    });
    expect(b.keyStatus().term).toBe(5);
  });

  test("concurrent reads of several unknown-version records in B share one reload", async () => {
    const { a, b, barrierA, barrierB } = await twoProcesses();
    await a.rotate();
    for (let i = 0; i < 10; i++) await barrierA.put(`x/${i}`, Buffer.from(`v${i}`));
    const values = await Promise.all(Array.from({ length: 10 }, (_, i) => barrierB.get(`x/${i}`)));
    expect(values.map((v) => v?.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`));
    expect(b.keyStatus().term).toBe(2);
  });

  test("keyring rollback: an old keyring record put back is refused with CORRUPT by B's reload and by A's rotate", async () => {
    const { rawA, rawB, a, barrierA, barrierB } = await twoProcesses({ encryptionsPerReservation: 1 });
    const saved = await rawA.get(KEYRING_KEY);
    expect(saved).not.toBeNull();
    // B's second write reserves again: B has now seen a newer generation than the saved record.
    await barrierB.put("b/1", Buffer.from("b"));
    await barrierB.put("b/2", Buffer.from("b"));
    expect(await rawA.get(KEYRING_KEY)).not.toEqual(saved);
    await a.rotate();
    await barrierA.put("rotated", Buffer.from("under version 2"));

    await rawA.put(KEYRING_KEY, saved as Buffer);

    // B meets version 2, reloads, finds an older generation than it has seen: a rollback.
    const onRead = await expectStorageError(() => barrierB.get("rotated"), StorageErrorCode.CORRUPT);
    expect(onRead.message).toMatch(/rollback/);
    // A rotates: its transaction reads the stored keyring and refuses it.
    const onRotate = await expectStorageError(() => a.rotate(), StorageErrorCode.CORRUPT);
    expect(onRotate.message).toMatch(/rollback/);
    // The refused rotation wrote nothing: the rolled-back record is still the stored one.
    expect(await rawB.get(KEYRING_KEY)).toEqual(saved);
    expect(a.keyStatus().term).toBe(2);
  });
});

describe("keyring rollback on one manager", () => {
  test("rotate() after the old keyring record is restored fails with CORRUPT mentioning rollback", async () => {
    const { raw, seal, barrier: secured } = await stack();
    const saved = (await raw.get(KEYRING_KEY)) as Buffer;
    await seal.rotate();
    await secured.put("k", Buffer.from("v2"));
    await raw.put(KEYRING_KEY, saved);
    const error = await expectStorageError(() => seal.rotate(), StorageErrorCode.CORRUPT);
    expect(error.message).toContain("rollback");
    expect(await raw.get(KEYRING_KEY)).toEqual(saved);
    // Data written under the newer keyring still reads back with the keys in memory.
    expect(await secured.get("k")).toEqual(Buffer.from("v2"));
  });

  test("a reservation after the old keyring record is restored fails with CORRUPT as well", async () => {
    const { raw, barrier: secured } = await stack({ encryptionsPerReservation: 2 });
    const saved = (await raw.get(KEYRING_KEY)) as Buffer;
    await secured.put("a", Buffer.from("1"));
    await secured.put("b", Buffer.from("2"));
    await secured.put("c", Buffer.from("3")); // reserves: this manager has seen a newer generation
    await raw.put(KEYRING_KEY, saved);
    await secured.put("d", Buffer.from("4")); // still within the reservation
    const error = await expectStorageError(() => secured.put("e", Buffer.from("5")), StorageErrorCode.CORRUPT);
    expect(error.message).toContain("rollback");
    expect(await raw.exists("e")).toBe(false);
  });
});

// ---- retire ----------------------------------------------------------------------------------

describe("retire", () => {
  test("refuses the active version, versions still in use, and unknown versions; after rewrap retires, and old records then fail", async () => {
    const { raw, seal, barrier: secured } = await stack({ keyringMaxAgeMs: 1 });
    const keys = await putMany(secured, 12);

    const active = await expectSealError(() => seal.retire(1), SealErrorCode.KEY_VERSION_IN_USE);
    expect(active.message).toMatch(/active/);
    await expectSealError(() => seal.retire(2), SealErrorCode.INVALID_ARGUMENT);

    await seal.rotate();
    await expectSealError(() => seal.retire(2), SealErrorCode.KEY_VERSION_IN_USE);
    await sleep(20); // past keyringMaxAgeMs, so only the records keep version 1 in use

    const inUse = await expectSealError(() => seal.retire(1), SealErrorCode.KEY_VERSION_IN_USE);
    expect(inUse.message).toContain("12 records");
    expect(inUse.message).toContain("rewrap");
    expect(seal.keyStatus().versions[0]?.state).toBe("decrypt");

    const savedKey = keys[3] as string;
    const savedRecord = (await raw.get(savedKey)) as Buffer;
    expect(headerVersion(savedRecord)).toBe(1);

    expect((await seal.rewrap()).rewrapped).toBe(12);
    const status = await seal.retire(1);
    expect(status.versions.map((v) => [v.version, v.state])).toEqual([
      [1, "retired"],
      [2, "active"],
    ]);
    expect(seal.keyStatus()).toEqual(status);
    // Retiring again is a no-op.
    expect((await seal.retire(1)).versions[0]?.state).toBe("retired");
    for (const key of keys) expect(await secured.get(key)).toEqual(valueFor(key));

    // A record under version 1 put back (a restored backup) is refused, not decrypted.
    await raw.put(savedKey, savedRecord);
    const refused = await expectStorageError(() => secured.get(savedKey), StorageErrorCode.CORRUPT);
    expect(refused.message).toContain("retired");
    await expectStorageError(async () => {
      for await (const _entry of secured.scan("r/")) {
        // consume
      }
    }, StorageErrorCode.CORRUPT);
    const inTx = await expectStorageError(() => secured.transaction(async (tx) => tx.get(savedKey)), StorageErrorCode.CORRUPT);
    expect(inTx.message).toContain("retired");
  });

  test("a version whose successor is younger than keyringMaxAgeMs cannot be retired yet", async () => {
    const { seal, barrier: secured } = await stack();
    await putMany(secured, 3);
    await seal.rotate();
    await seal.rewrap();
    const error = await expectSealError(() => seal.retire(1), SealErrorCode.KEY_VERSION_IN_USE);
    expect(error.message).toMatch(/may still be in use/);
    expect(seal.keyStatus().versions[0]?.state).toBe("decrypt");
  });

  test("the retirement is stored and seen by a manager unsealing afterwards", async () => {
    const result = await openSealedStack({ seal: { keyringMaxAgeMs: 1 } });
    opened.push(result.raw);
    const { raw, seal, barrier: secured, shares } = result;
    await secured.put("k", Buffer.from("v1"));
    const oldRecord = (await raw.get("k")) as Buffer;
    await seal.rotate();
    await sleep(20);
    await seal.rewrap();
    await seal.retire(1);
    seal.seal();

    const later = await SealManager.open(raw, { keyringMaxAgeMs: 1 });
    await later.unseal(shares[0] as Buffer);
    expect(later.keyStatus().versions.map((v) => v.state)).toEqual(["retired", "active"]);
    await raw.put("k", oldRecord);
    const error = await expectStorageError(() => barrier(raw, later).get("k"), StorageErrorCode.CORRUPT);
    expect(error.message).toContain("retired");
  });
});
