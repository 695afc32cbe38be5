import { SealManager } from "@egide/crypto-envelope";
import { StorageError, StorageErrorCode, putEntries } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterAll, describe, expect, test } from "vitest";
import { BackupError, BackupErrorCode, holdsUserRecords, restoreBackup, summarizeStorage } from "../src/index.js";
import { fileSource, makeSecrets, readAll, snapshot, writeBackupFile, writeRawRecords, writeSecrets } from "./support/backup-files.js";
import type { WrittenBackup } from "./support/backup-files.js";
import { BACKEND_TYPES, Stores, install, reopen } from "./support/stores.js";
import { setupOrFailEveryTest } from "./support/setup.js";
import type { Installation } from "./support/stores.js";

let stores: Stores;
let source: Installation;
let backup: WrittenBackup;
const sourceSecrets = makeSecrets(40, "source");

setupOrFailEveryTest(async () => {
  stores = await Stores.create("target");
  source = await install(stores.sqlite());
  await writeSecrets(source.barrier, sourceSecrets);
  backup = await writeBackupFile(source.raw, source.seal, stores.path("source.egb"), { chunkBytes: 512 });
});

afterAll(async () => {
  await stores?.cleanup();
});

describe.each(BACKEND_TYPES)("restoring into a %s target that holds records", (type) => {
  const targetSecrets = makeSecrets(25, `target-${type}`, "old");

  async function populatedTarget(): Promise<Installation> {
    const target = await install(await stores.open(type));
    await writeSecrets(target.barrier, targetSecrets);
    return target;
  }

  test("without force is refused with TARGET_NOT_EMPTY and changes nothing", async () => {
    const installed = await populatedTarget();
    const rawOnly = await stores.open(type);
    await rawOnly.put("a", Buffer.from("raw record, no installation"));
    // Keys sorting before ".egide/", beside an installation.
    const beforeReserved = await install(await stores.open(type));
    await beforeReserved.raw.put("!first", Buffer.from("x"));
    await beforeReserved.raw.put("-dash/key", Buffer.from("y"));
    const lookalike = await install(await stores.open(type));
    await lookalike.raw.put(".egide-not-reserved", Buffer.from("z"));
    for (const target of [installed.raw, rawOnly, beforeReserved.raw, lookalike.raw]) {
      expect(await holdsUserRecords(target)).toBe(true);
      const before = await snapshot(target);
      let error: unknown;
      await restoreBackup(target, fileSource(backup.path), source.seal).catch((e: unknown) => (error = e));
      expect(BackupError.isInstance(error, BackupErrorCode.TARGET_NOT_EMPTY)).toBe(true);
      expect(error).toMatchObject({ code: "TARGET_NOT_EMPTY" });
      expect(await snapshot(target)).toEqual(before);
    }
    expect(await readAll((await reopen(installed.raw, installed.share)).barrier, targetSecrets)).toEqual({
      read: 25,
      mismatched: [],
      extra: [],
    });
  });

  test("holding only an installation's .egide/ records is not refused: they are replaced", async () => {
    const blank = await install(await stores.open(type));
    const own = await snapshot(blank.raw);
    expect(own.size).toBe(3);
    expect(await holdsUserRecords(blank.raw)).toBe(false);
    const report = await restoreBackup(blank.raw, fileSource(backup.path), source.seal);
    expect(report).toMatchObject({ replaced: 3, records: backup.summary.records, digest: backup.summary.digest });
    expect(await snapshot(blank.raw)).toEqual(await snapshot(source.raw));
  });

  test("with force replaces everything: the old keys are gone and the old share no longer opens it", async () => {
    const target = await populatedTarget();
    await target.raw.put("plain/raw", Buffer.from("raw"));
    const before = await snapshot(target.raw);
    const report = await restoreBackup(target.raw, fileSource(backup.path), source.seal, { force: true });
    expect(report.replaced).toBe(before.size);
    expect(report.records).toBe(backup.summary.records);
    const after = await snapshot(target.raw);
    expect(after).toEqual(await snapshot(source.raw));
    expect([...before.keys()].filter((key) => !key.startsWith(".egide/") && after.has(key))).toEqual([]);
    expect(await summarizeStorage(target.raw)).toEqual(backup.summary);
    expect(await readAll((await reopen(target.raw, source.share)).barrier, sourceSecrets)).toEqual({ read: 40, mismatched: [], extra: [] });
    const old = await SealManager.open(target.raw);
    await expect(old.unseal(target.share)).rejects.toMatchObject({ name: "SealError" });
  });

  test("with force empties a target with more keys than one listing page, at the top and in nested folders", async () => {
    const target = await stores.open(type);
    const top = Array.from({ length: 1_050 }, (_, i) => ({ key: `top-${String(i).padStart(5, "0")}`, value: Buffer.from([i & 0xff]) }));
    await target.transaction((tx) => putEntries(tx, top));
    await writeRawRecords(target, "deep/x", 1_100, 8);
    await target.put("bar", Buffer.from("a key"));
    await target.put("bar/baz", Buffer.from("and a folder of the same name"));
    await target.put("bar-baz", Buffer.from("sorting between them"));
    const report = await restoreBackup(target, fileSource(backup.path), source.seal, { force: true });
    expect(report.replaced).toBe(1_050 + 1_100 + 3);
    expect(await snapshot(target)).toEqual(await snapshot(source.raw));
  }, 30_000);

  test("a record the target cannot take fails the restore midway, and the transaction rolls back", async () => {
    // A target whose values may not exceed 10,000 bytes; the backup holds a 20,000-byte secret.
    const raw =
      type === "sqlite"
        ? stores.track(SqliteBackend.open({ path: stores.path("small-values.db"), maxValueBytes: 10_000 }))
        : await stores.postgres({ maxValueBytes: 10_000 });
    const target = await install(raw);
    await target.raw.put("old/record", Buffer.from("kept"));
    expect([...sourceSecrets.values()].some((value) => value.length > 10_000)).toBe(true);
    const before = await snapshot(target.raw);
    let applied = 0;
    const failure = await restoreBackup(target.raw, fileSource(backup.path), source.seal, {
      force: true,
      onProgress: (phase, progress) => {
        if (phase === "apply") applied = progress.records;
      },
    }).catch((e: unknown) => e);
    expect(StorageError.isInstance(failure, StorageErrorCode.VALUE_TOO_LARGE)).toBe(true);
    expect(applied).toBeGreaterThan(0);
    expect(await snapshot(target.raw)).toEqual(before);
  });

  test("a beforeCommit that throws rolls everything back, its own writes included", async () => {
    const target = await populatedTarget();
    const before = await snapshot(target.raw);
    const hook = new Error("refused by the hook");
    let sawRestored = false;
    await expect(
      restoreBackup(target.raw, fileSource(backup.path), source.seal, {
        force: true,
        beforeCommit: async (tx) => {
          sawRestored = (await tx.get("app/secret-0")) !== null;
          expect(await tx.get(`${[...targetSecrets.keys()][3]}`)).toBeNull(); // deleted in this transaction
          await tx.put("hook/write", Buffer.from("must vanish"));
          throw hook;
        },
      }),
    ).rejects.toBe(hook);
    expect(sawRestored).toBe(true);
    expect(await snapshot(target.raw)).toEqual(before);
    expect(await target.raw.get("hook/write")).toBeNull();
    expect(await readAll((await reopen(target.raw, target.share)).barrier, targetSecrets)).toEqual({ read: 25, mismatched: [], extra: [] });

    // A hook that succeeds commits with the restore.
    await restoreBackup(target.raw, fileSource(backup.path), source.seal, {
      force: true,
      beforeCommit: (tx) => tx.put("hook/write", Buffer.from("kept")),
    });
    expect((await target.raw.get("hook/write"))?.toString()).toBe("kept");
    expect((await summarizeStorage(target.raw)).records).toBe(backup.summary.records + 1);
  });
});
