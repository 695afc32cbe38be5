import { putEntries } from "@egide/storage-core";
import { SealManager } from "@egide/crypto-envelope";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterAll, describe, expect, test } from "vitest";
import {
  BackupReader,
  CHUNK_OVERHEAD_BYTES,
  END_BYTES,
  UNSEAL_RECORD_KEYS,
  encodeRecord,
  readBackupHeader,
  ByteReader,
  restoreBackup,
  summarizeStorage,
  verifyBackup,
} from "../src/index.js";
import type { BackupHeader, BackupKeySource } from "../src/index.js";
import { fileSource, makeSecrets, readAll, snapshot, writeBackupFile, writeSecrets } from "./support/backup-files.js";
import { BACKEND_TYPES, Stores, install, reopen } from "./support/stores.js";
import { setupOrFailEveryTest } from "./support/setup.js";
import type { BackendType } from "./support/stores.js";

let stores: Stores;
setupOrFailEveryTest(async () => {
  stores = await Stores.create("roundtrip");
});
afterAll(async () => {
  await stores?.cleanup();
});

const SECRETS = 300;
const CHUNK = 512;

const other = (type: BackendType): BackendType => (type === "sqlite" ? "postgresql" : "sqlite");

describe.each(BACKEND_TYPES)("a backup of an installation on %s", (sourceType) => {
  test("verifies to the writer's and the store's summary, and restores into an empty store of the same type and of the other type", async () => {
    const source = await install(await stores.open(sourceType));
    const secrets = makeSecrets(SECRETS, sourceType);
    await writeSecrets(source.barrier, secrets);
    const sourceSummary = await summarizeStorage(source.raw);
    // Every secret, plus the installation's own records.
    expect(sourceSummary.records).toBeGreaterThan(SECRETS);
    const egide = [...(await snapshot(source.raw)).keys()].filter((key) => key.startsWith(".egide/"));
    expect(sourceSummary.records).toBe(SECRETS + egide.length);

    const started = Date.now();
    const written = await writeBackupFile(source.raw, source.seal, stores.path("backup.egb"), { chunkBytes: CHUNK });
    expect(written.summary).toEqual(sourceSummary);
    // Many chunks: every one but the last is exactly chunkBytes of plaintext plus the tag.
    const chunks = written.pieces.slice(1);
    expect(chunks.length).toBeGreaterThan(100);
    expect(chunks.slice(0, -1).every((n) => n === CHUNK + CHUNK_OVERHEAD_BYTES)).toBe(true);
    expect(written.fileBytes).toBe(written.pieces.reduce((a, b) => a + b, 0));

    const verified = await verifyBackup(fileSource(written.path)(), source.seal);
    expect({ records: verified.records, digest: verified.digest }).toEqual(sourceSummary);
    expect(verified.fileBytes).toBe(written.fileBytes);
    expect(verified.header.sourceType).toBe(sourceType);
    expect(verified.header.chunkBytes).toBe(CHUNK);
    expect(verified.header.installationId.equals(source.seal.installationId())).toBe(true);
    expect(verified.header.createdAt.getTime()).toBeGreaterThanOrEqual(started - 1);
    expect(verified.header.createdAt.getTime()).toBeLessThanOrEqual(Date.now());
    // The header carries the installation's unseal records exactly as stored.
    const expectedUnseal = [];
    for (const key of UNSEAL_RECORD_KEYS) {
      const value = await source.raw.get(key);
      if (value !== null) expectedUnseal.push({ key, value: value.toString("hex") });
    }
    expect(expectedUnseal.map((r) => r.key)).toEqual([".egide/seal-config", ".egide/root-key", ".egide/keyring"]);
    expect(verified.header.unsealRecords.map((r) => ({ key: r.key, value: r.value.toString("hex") }))).toEqual(expectedUnseal);

    // The public header reads without keys, and says the same.
    const header = await readBackupHeader(new ByteReader(fileSource(written.path)()));
    expect(header.header.installationId.equals(verified.header.installationId)).toBe(true);
    expect(header.body.length + header.mac.length).toBe(written.headerBytes);

    const sourceRecords = await snapshot(source.raw);
    for (const targetType of [sourceType, other(sourceType)]) {
      const target = await stores.open(targetType);
      const phases = new Set<string>();
      const report = await restoreBackup(target, fileSource(written.path), source.seal, { onProgress: (phase) => phases.add(phase) });
      expect(report).toMatchObject({
        records: sourceSummary.records,
        digest: sourceSummary.digest,
        replaced: 0,
        fileBytes: written.fileBytes,
      });
      expect([...phases].sort()).toEqual(["apply", "verify"]);
      expect(await summarizeStorage(target)).toEqual(sourceSummary);
      expect(await snapshot(target)).toEqual(sourceRecords);

      // A new seal manager over the restored store opens with the same share and reads everything.
      const restored = await reopen(target, source.share);
      expect(restored.seal.installationId().equals(source.seal.installationId())).toBe(true);
      expect(await readAll(restored.barrier, secrets)).toEqual({ read: SECRETS, mismatched: [], extra: [] });
      // And is a working installation: it takes new secrets.
      await restored.barrier.put("after/restore", Buffer.from("new"));
      expect((await (await reopen(target, source.share)).barrier.get("after/restore"))?.toString()).toBe("new");
      restored.seal.seal();
    }
  }, 60_000);

  test("restored with rotateAfterRestore in beforeCommit: a new active key version, every secret still reads", async () => {
    const source = await install(await stores.open(sourceType));
    const secrets = makeSecrets(120, `${sourceType}-rotate`);
    await writeSecrets(source.barrier, secrets);
    const sourceTerm = source.seal.keyStatus().term;
    const written = await writeBackupFile(source.raw, source.seal, stores.path("backup.egb"), { chunkBytes: 1024 });

    for (const targetType of [sourceType, other(sourceType)]) {
      const target = await stores.open(targetType);
      let version = 0;
      let calls = 0;
      const report = await restoreBackup(target, fileSource(written.path), source.seal, {
        beforeCommit: async (tx) => {
          calls++;
          // Every record is already written when the hook runs.
          expect(await tx.get("app/secret-0")).not.toBeNull();
          version = await source.seal.rotateAfterRestore(tx);
        },
      });
      expect(calls).toBe(1);
      expect(report.records).toBe(written.summary.records);
      expect(version).toBeGreaterThan(sourceTerm);

      const restored = await reopen(target, source.share);
      expect(restored.seal.keyStatus().term).toBe(version);
      expect(restored.seal.keyStatus().term).not.toBe(sourceTerm);
      expect(restored.seal.keyStatus().versions.map((v) => v.version)).toContain(sourceTerm);
      expect(await readAll(restored.barrier, secrets)).toEqual({ read: secrets.size, mismatched: [], extra: [] });
      // Only the keyring differs from the backup.
      const restoredRecords = await snapshot(target);
      const sourceRecords = await snapshot(source.raw);
      const differing = [...sourceRecords.keys()].filter((key) => restoredRecords.get(key) !== sourceRecords.get(key));
      expect(differing).toEqual([".egide/keyring"]);
      expect(restoredRecords.size).toBe(sourceRecords.size);
      // New writes use the new version and read back through yet another manager.
      await restored.barrier.put("after/rotation", Buffer.from("rotated"));
      expect((await (await reopen(target, source.share)).barrier.get("after/rotation"))?.toString()).toBe("rotated");
      restored.seal.seal();
    }
  }, 60_000);
});

describe.each(BACKEND_TYPES)("rolling an installation on %s back to its own backup", (type) => {
  test("restores into the installation's own storage with force and a rotation: later secrets are gone, earlier ones read", async () => {
    const source = await install(await stores.open(type));
    const early = makeSecrets(50, "early", "early");
    await writeSecrets(source.barrier, early);
    const written = await writeBackupFile(source.raw, source.seal, stores.path("rollback.egb"), { chunkBytes: 512 });
    const late = makeSecrets(30, "late", "late");
    await writeSecrets(source.barrier, late);
    await source.seal.rotate();
    await source.seal.rotate();
    const termBefore = source.seal.keyStatus().term;

    await expect(restoreBackup(source.raw, fileSource(written.path), source.seal)).rejects.toMatchObject({ code: "TARGET_NOT_EMPTY" });
    let version = 0;
    const report = await restoreBackup(source.raw, fileSource(written.path), source.seal, {
      force: true,
      beforeCommit: async (tx) => {
        version = await source.seal.rotateAfterRestore(tx);
      },
    });
    expect(report.replaced).toBe(50 + 30 + 3);
    expect(version).toBeGreaterThan(termBefore);
    source.seal.seal();

    const rolledBack = await reopen(source.raw, source.share);
    expect(rolledBack.seal.keyStatus().term).toBe(version);
    expect(await readAll(rolledBack.barrier, early)).toEqual({ read: 50, mismatched: [], extra: [] });
    await rolledBack.barrier.put("after/rollback", Buffer.from("ok"));
    expect((await (await reopen(source.raw, source.share)).barrier.get("after/rollback"))?.toString()).toBe("ok");
  });
});

describe("the keys of a backup", () => {
  test("can come from the header's own unseal records and the share alone (a restore into a blank database)", async () => {
    const source = await install(stores.sqlite());
    const secrets = makeSecrets(60, "blank");
    await writeSecrets(source.barrier, secrets);
    const written = await writeBackupFile(source.raw, source.seal, stores.path("backup.egb"), { chunkBytes: 512 });
    source.seal.seal(); // the source's keys are not used below

    const scratch: SqliteBackend[] = [];
    const fromHeader = async (header: BackupHeader): Promise<BackupKeySource> => {
      const raw = SqliteBackend.open({ path: ":memory:" });
      scratch.push(raw);
      await raw.transaction((tx) => putEntries(tx, header.unsealRecords));
      const seal = await SealManager.open(raw);
      await seal.unseal(source.share);
      return seal;
    };
    try {
      const target = await stores.postgres();
      const report = await restoreBackup(target, fileSource(written.path), fromHeader);
      expect(report.records).toBe(written.summary.records);
      expect(scratch).toHaveLength(2); // once per pass
      expect(await readAll((await reopen(target, source.share)).barrier, secrets)).toEqual({ read: 60, mismatched: [], extra: [] });
    } finally {
      for (const raw of scratch) await raw.close();
    }
  });
});

describe("edge sizes", () => {
  test("an empty installation (only its .egide/ records) round trips", async () => {
    const source = await install(stores.sqlite());
    const summary = await summarizeStorage(source.raw);
    expect(summary.records).toBe(3);
    const written = await writeBackupFile(source.raw, source.seal, stores.path("empty.egb"), { chunkBytes: 256 });
    expect(written.summary).toEqual(summary);
    const verified = await verifyBackup(fileSource(written.path)(), source.seal);
    expect({ records: verified.records, digest: verified.digest }).toEqual(summary);

    for (const target of [stores.sqlite(), await stores.postgres()]) {
      const report = await restoreBackup(target, fileSource(written.path), source.seal);
      expect(report).toMatchObject({ records: 3, digest: summary.digest, replaced: 0 });
      expect(await summarizeStorage(target)).toEqual(summary);
      const restored = await reopen(target, source.share);
      expect(await readAll(restored.barrier, new Map())).toEqual({ read: 0, mismatched: [], extra: [] });
    }
  });

  test("content of exactly one chunk, one chunk and a byte, two full chunks: exact file sizes, all verify and restore", async () => {
    const source = await install(stores.sqlite());
    // Enough content for a chunk size above the minimum, with an even length.
    await source.barrier.put("pad/a", Buffer.alloc(200, 1));
    let content = END_BYTES;
    for await (const { key, value } of source.raw.scan("")) content += encodeRecord(key, value).length;
    if (content % 2 === 1) {
      await source.barrier.put("pad/b", Buffer.alloc(0));
      content = END_BYTES;
      for await (const { key, value } of source.raw.scan("")) content += encodeRecord(key, value).length;
    }
    expect(content % 2).toBe(0);
    expect(content / 2).toBeGreaterThanOrEqual(256);
    const summary = await summarizeStorage(source.raw);

    const cases = [
      { chunkBytes: content, chunks: [content] },
      { chunkBytes: content - 1, chunks: [content - 1, 1] },
      { chunkBytes: content + 1, chunks: [content] },
      { chunkBytes: content / 2, chunks: [content / 2, content / 2] },
      { chunkBytes: content / 2 - 1, chunks: [content / 2 - 1, content / 2 - 1, 2] },
    ];
    for (const { chunkBytes, chunks } of cases) {
      const written = await writeBackupFile(source.raw, source.seal, stores.path(`exact-${chunkBytes}.egb`), { chunkBytes });
      expect({ chunkBytes, pieces: written.pieces.slice(1) }).toEqual({ chunkBytes, pieces: chunks.map((n) => n + CHUNK_OVERHEAD_BYTES) });
      expect(written.fileBytes).toBe(written.headerBytes + chunks.reduce((a, b) => a + b, 0) + CHUNK_OVERHEAD_BYTES * chunks.length);
      const verified = await verifyBackup(fileSource(written.path)(), source.seal);
      expect({ records: verified.records, digest: verified.digest, fileBytes: verified.fileBytes }).toEqual({
        ...summary,
        fileBytes: written.fileBytes,
      });
      const target = stores.sqlite();
      await restoreBackup(target, fileSource(written.path), source.seal);
      expect(await summarizeStorage(target)).toEqual(summary);
    }
  });

  test("a store holding no record at all (and no installation) backs up under another installation's keys and restores", async () => {
    const keys = await install(stores.sqlite());
    const empty = await stores.postgres();
    const written = await writeBackupFile(empty, keys.seal, stores.path("nothing.egb"), { chunkBytes: 256 });
    expect(written.summary).toEqual(await summarizeStorage(empty));
    expect(written.summary.records).toBe(0);
    // Only the end marker: one chunk of 41 bytes.
    expect(written.pieces.slice(1)).toEqual([END_BYTES + CHUNK_OVERHEAD_BYTES]);
    const verified = await verifyBackup(fileSource(written.path)(), keys.seal);
    expect(verified.header.unsealRecords).toEqual([]);
    expect(verified.header.sourceType).toBe("postgresql");
    expect(verified.records).toBe(0);
    const target = stores.sqlite();
    await target.put("x", Buffer.from("replaced"));
    const report = await restoreBackup(target, fileSource(written.path), keys.seal, { force: true });
    expect(report).toMatchObject({ records: 0, replaced: 1 });
    expect(await snapshot(target)).toEqual(new Map());
  });

  test("a reader reads its file once", async () => {
    const source = await install(stores.sqlite());
    const written = await writeBackupFile(source.raw, source.seal, stores.path("once.egb"), { chunkBytes: 256 });
    const reader = await BackupReader.open(fileSource(written.path)(), source.seal);
    let batches = 0;
    for await (const batch of reader.batches()) batches += batch.length > 0 ? 1 : 0;
    expect(batches).toBeGreaterThan(0);
    expect(reader.summary?.records).toBe(3);
    await expect(reader.batches().next()).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});
