import type { StorageBackend } from "@egide/storage-core";
import { putEntries } from "@egide/storage-core";
import { afterAll, describe, expect, test } from "vitest";
import { BackupError, BackupErrorCode, MIGRATION_PROGRESS_KEY, RecordDigest, migrateRecords, summarizeStorage } from "../src/index.js";
import { backupErrorCode, makeSecrets, readAll, snapshot, writeRawRecords, writeSecrets } from "./support/backup-files.js";
import { Stores, install, reopen } from "./support/stores.js";
import { setupOrFailEveryTest } from "./support/setup.js";

let stores: Stores;
setupOrFailEveryTest(async () => {
  stores = await Stores.create("migrate");
});
afterAll(async () => {
  await stores?.cleanup();
});

const EXCLUDE_PROGRESS = new Set([MIGRATION_PROGRESS_KEY]);

async function keysOf(backend: StorageBackend): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of backend.scan("")) keys.push(key);
  return keys;
}

function progressOf(bytes: Buffer | null): unknown {
  return bytes === null ? null : JSON.parse(bytes.toString("utf8"));
}

describe("migrating 100,000 raw records from SQLite to PostgreSQL", () => {
  test("is interrupted after 40,000, refused without resume, then resumed and verified", async () => {
    const from = stores.sqlite();
    await writeRawRecords(from, "k", 100_000, 100, 25_000);
    // A few unicode keys on either side of "k/" in byte order.
    const unicode = makeSecrets(50, "migrate");
    await from.transaction((tx) =>
      putEntries(
        tx,
        [...unicode].map(([key, value]) => ({ key, value })),
      ),
    );
    const total = 100_050;
    const sourceKeys = await keysOf(from);
    expect(sourceKeys).toHaveLength(total);
    const sourceSummary = await summarizeStorage(from);

    const to = await stores.postgres();
    const interrupt = new Error("interrupted by the test");
    let copiedWhenInterrupted = 0;
    await expect(
      migrateRecords(from, to, {
        onProgress: (phase, records) => {
          if (phase === "copy" && records >= 40_000) {
            copiedWhenInterrupted = records;
            throw interrupt;
          }
        },
      }),
    ).rejects.toBe(interrupt);
    expect(copiedWhenInterrupted).toBe(40_000);
    // The destination holds the first 40,000 records and the progress record naming the last.
    expect(progressOf(await to.get(MIGRATION_PROGRESS_KEY))).toEqual({ format: 1, lastKey: sourceKeys[39_999], copied: 40_000 });
    const firstPart = new RecordDigest();
    let n = 0;
    for await (const { key, value } of from.scan("")) {
      if (n++ === 40_000) break;
      firstPart.add(key, value);
    }
    expect(await summarizeStorage(to, { exclude: EXCLUDE_PROGRESS })).toEqual(firstPart.summary());

    // A run without --resume over the interrupted one is refused and changes nothing.
    let refused: unknown;
    await migrateRecords(from, to).catch((e: unknown) => (refused = e));
    expect(BackupError.isInstance(refused, BackupErrorCode.TARGET_NOT_EMPTY)).toBe(true);
    expect(progressOf(await to.get(MIGRATION_PROGRESS_KEY))).toEqual({ format: 1, lastKey: sourceKeys[39_999], copied: 40_000 });

    const phases = new Set<string>();
    const report = await migrateRecords(from, to, { resume: true, onProgress: (phase) => phases.add(phase) });
    expect(report).toEqual({ copied: total - 40_000, resumedAfter: 40_000, summary: sourceSummary });
    expect(report.copied + report.resumedAfter).toBe(total);
    expect([...phases].sort()).toEqual(["copy", "verify-destination", "verify-source"]);
    expect(await to.get(MIGRATION_PROGRESS_KEY)).toBeNull();
    expect(await summarizeStorage(to)).toEqual(sourceSummary);
    expect(await summarizeStorage(from)).toEqual(sourceSummary);
  }, 180_000);
});

describe("migrating records", () => {
  test("an installation migrated SQLite → PostgreSQL → SQLite opens with the same share and reads every secret", async () => {
    const source = await install(stores.sqlite());
    const secrets = makeSecrets(60, "installation");
    await writeSecrets(source.barrier, secrets);
    // Four hundred more, encrypted by the barrier in one transaction.
    const bulk = [...makeSecrets(400, "bulk", "bulk")].map(([key, value]) => ({ key: `bulk/${key}`, value }));
    await source.barrier.transaction((tx) => putEntries(tx, bulk));
    for (const { key, value } of bulk) secrets.set(key, value);
    const summary = await summarizeStorage(source.raw);

    const pg = await stores.postgres();
    const there = await migrateRecords(source.raw, pg, { batchRecords: 128 });
    expect(there).toEqual({ copied: summary.records, resumedAfter: 0, summary });
    const back = stores.sqlite();
    const again = await migrateRecords(pg, back, { batchRecords: 7 });
    expect(again).toEqual({ copied: summary.records, resumedAfter: 0, summary });
    for (const store of [pg, back]) {
      expect(await snapshot(store)).toEqual(await snapshot(source.raw));
      const opened = await reopen(store, source.share);
      expect(await readAll(opened.barrier, secrets)).toEqual({ read: 460, mismatched: [], extra: [] });
    }
  });

  test("a non-empty destination is refused (TARGET_NOT_EMPTY) and replaced with force", async () => {
    const from = stores.sqlite();
    await writeRawRecords(from, "src", 1_500, 60);
    const summary = await summarizeStorage(from);

    const withRecords = await stores.postgres();
    await withRecords.put("old/1", Buffer.from("one"));
    await withRecords.put("zzz/old", Buffer.from("two"));
    const withInstallation = (await install(stores.sqlite())).raw; // only .egide/ records: not empty for a migration
    for (const to of [withRecords, withInstallation]) {
      const before = await snapshot(to);
      expect(await backupErrorCode(migrateRecords(from, to))).toBe(BackupErrorCode.TARGET_NOT_EMPTY);
      // --resume with no interrupted migration to continue is refused too.
      expect(await backupErrorCode(migrateRecords(from, to, { resume: true }))).toBe(BackupErrorCode.TARGET_NOT_EMPTY);
      expect(await snapshot(to)).toEqual(before);

      const report = await migrateRecords(from, to, { force: true, batchRecords: 400 });
      expect(report).toEqual({ copied: 1_500, resumedAfter: 0, summary });
      expect(await summarizeStorage(to)).toEqual(summary);
      const after = await snapshot(to);
      expect([...before.keys()].filter((key) => after.has(key))).toEqual([]);
    }
  });

  test("resume on an empty destination is a fresh copy; force over an interrupted run starts over", async () => {
    const from = stores.sqlite();
    await writeRawRecords(from, "r", 1_000, 40);
    const summary = await summarizeStorage(from);
    const to = await stores.postgres();
    expect(await migrateRecords(from, to, { resume: true, batchRecords: 300 })).toEqual({ copied: 1_000, resumedAfter: 0, summary });

    const to2 = stores.sqlite();
    const stop = new Error("stop");
    await expect(
      migrateRecords(from, to2, {
        batchRecords: 300,
        onProgress: (phase, records) => {
          if (phase === "copy" && records === 600) throw stop;
        },
      }),
    ).rejects.toBe(stop);
    expect(progressOf(await to2.get(MIGRATION_PROGRESS_KEY))).toMatchObject({ format: 1, copied: 600, lastKey: "r/000599" });
    expect(await backupErrorCode(migrateRecords(from, to2))).toBe(BackupErrorCode.TARGET_NOT_EMPTY);
    expect(await migrateRecords(from, to2, { force: true, batchRecords: 300 })).toEqual({ copied: 1_000, resumedAfter: 0, summary });
    expect(await to2.get(MIGRATION_PROGRESS_KEY)).toBeNull();
  });

  test("a source that changes during the copy fails verification (VERIFICATION_FAILED)", async () => {
    const changes: Array<[string, (from: StorageBackend) => Promise<void>]> = [
      ["an already-copied key overwritten", (from) => from.put("v/000010", Buffer.from("changed after it was copied"))],
      ["an already-copied key deleted", (from) => from.delete("v/000011")],
      ["a key added behind the copy", (from) => from.put("v/000010a", Buffer.from("new"))],
    ];
    for (const [name, change] of changes) {
      const from = stores.sqlite();
      await writeRawRecords(from, "v", 3_000, 50);
      const to = await stores.postgres();
      let pending: Promise<void> | undefined;
      const code = await backupErrorCode(
        migrateRecords(from, to, {
          batchRecords: 500,
          onProgress: (phase, records) => {
            if (phase === "copy" && records === 500) pending = change(from);
          },
        }),
      );
      await pending;
      expect({ name, code }).toEqual({ name, code: BackupErrorCode.VERIFICATION_FAILED });
    }
  });

  test("a batch size out of range is refused before anything is touched (INVALID_ARGUMENT)", async () => {
    const from = stores.sqlite();
    await from.put("a", Buffer.from("a"));
    const to = stores.sqlite();
    for (const batchRecords of [0, -1, 1.5, 100_001, Number.NaN]) {
      expect(await backupErrorCode(migrateRecords(from, to, { batchRecords }))).toBe(BackupErrorCode.INVALID_ARGUMENT);
    }
    expect(await snapshot(to)).toEqual(new Map());
  });

  test("a storage migrated onto itself is refused, with and without force, and keeps its records", async () => {
    const path = stores.path("self.db");
    const from = stores.sqlite(path);
    await from.put("app/a", Buffer.from("a"));
    await from.put("app/b", Buffer.from("b"));
    const before = await summarizeStorage(from);
    const sameFile = stores.sqlite(path);
    for (const options of [{}, { force: true }, { resume: true }, { force: true, resume: true }]) {
      expect(await backupErrorCode(migrateRecords(from, sameFile, options)), JSON.stringify(options)).toMatch(
        /^(INVALID_ARGUMENT|TARGET_NOT_EMPTY)$/,
      );
    }
    expect(await backupErrorCode(migrateRecords(from, sameFile, { force: true }))).toBe(BackupErrorCode.INVALID_ARGUMENT);
    expect(await summarizeStorage(from)).toEqual(before);
    const pgA = await stores.postgres();
    await pgA.put("x", Buffer.from("x"));
    expect(await backupErrorCode(migrateRecords(pgA, pgA, { force: true }))).toBe(BackupErrorCode.INVALID_ARGUMENT);
    expect((await pgA.get("x"))?.toString()).toBe("x");
  });

  test("an empty source is refused (INVALID_ARGUMENT) and the destination is not touched", async () => {
    const from = stores.sqlite();
    const to = stores.sqlite();
    await to.put("keep", Buffer.from("k"));
    expect(await backupErrorCode(migrateRecords(from, to, { force: true }))).toBe(BackupErrorCode.INVALID_ARGUMENT);
    expect((await to.get("keep"))?.toString()).toBe("k");
  });

  test("a progress record of the wrong shape is refused with RECORDS_INVALID on resume", async () => {
    const from = stores.sqlite();
    await from.put("a", Buffer.from("a"));
    const to = stores.sqlite();
    await to.put(MIGRATION_PROGRESS_KEY, Buffer.from(JSON.stringify({ format: 2, lastKey: "a", copied: 1 })));
    expect(await backupErrorCode(migrateRecords(from, to, { resume: true }))).toBe(BackupErrorCode.RECORDS_INVALID);
  });

  // The message of that refusal says "start over with --force", and force is meant to empty the
  // destination whatever it holds; a progress record that is not JSON at all must be refused
  // with the package's own error, not a SyntaxError.
  test("a progress record that is not JSON is refused with a BackupError (RECORDS_INVALID), not a SyntaxError", async () => {
    const from = stores.sqlite();
    await from.put("a", Buffer.from("a"));
    for (const garbage of ["not json", "null", "", "[1,2"]) {
      const to = stores.sqlite();
      await to.put(MIGRATION_PROGRESS_KEY, Buffer.from(garbage));
      let error: unknown;
      await migrateRecords(from, to, { resume: true }).catch((e: unknown) => (error = e));
      expect({ garbage, error: BackupError.isInstance(error) ? error.code : String(error) }).toEqual({
        garbage,
        error: BackupErrorCode.RECORDS_INVALID,
      });
    }
  });

  test("force starts over even when the destination's progress record is unreadable (as its refusal message advises)", async () => {
    const from = stores.sqlite();
    await writeRawRecords(from, "f", 100, 10);
    const summary = await summarizeStorage(from);
    for (const garbage of [JSON.stringify({ format: 2 }), "not json"]) {
      const to = stores.sqlite();
      await to.put(MIGRATION_PROGRESS_KEY, Buffer.from(garbage));
      await to.put("old", Buffer.from("old"));
      let outcome: unknown;
      try {
        outcome = await migrateRecords(from, to, { force: true });
      } catch (error) {
        outcome = BackupError.isInstance(error) ? `${error.code}: ${error.message}` : String(error);
      }
      expect({ garbage, outcome }).toEqual({ garbage, outcome: { copied: 100, resumedAfter: 0, summary } });
    }
  });

  // "An interrupted run resumes exactly after the last batch that committed": a run stopped
  // during its (long) verification pass had committed every batch, yet the progress record is
  // deleted before that pass, so --resume is refused and only --force (a full copy again) is left.
  test("a run interrupted during its verification pass can be resumed (and only verifies)", async () => {
    const from = stores.sqlite();
    await writeRawRecords(from, "i", 2_000, 20);
    const summary = await summarizeStorage(from);
    const to = await stores.postgres();
    const stop = new Error("stopped while verifying");
    await expect(
      migrateRecords(from, to, {
        onProgress: (phase) => {
          if (phase === "verify-destination") throw stop;
        },
      }),
    ).rejects.toBe(stop);
    let outcome: unknown;
    try {
      outcome = await migrateRecords(from, to, { resume: true });
    } catch (error) {
      outcome = BackupError.isInstance(error) ? `${error.code}: ${error.message}` : String(error);
    }
    expect(outcome).toEqual({ copied: 0, resumedAfter: 2_000, summary });
  });
});
