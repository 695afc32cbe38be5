import { putEntries } from "@egide/storage-core";
import { afterAll, describe, expect, test } from "vitest";
import {
  BackupErrorCode,
  BackupWriter,
  CHUNK_OVERHEAD_BYTES,
  DEFAULT_CHUNK_BYTES,
  END_BYTES,
  MAX_CHUNK_BYTES,
  MIN_CHUNK_BYTES,
  RecordDigest,
  restoreBackup,
  summarizeStorage,
  verifyBackup,
} from "../src/index.js";
import { backupErrorCode, fileSource, writeBackupFile, writeRawRecords } from "./support/backup-files.js";
import { Stores, install } from "./support/stores.js";
import { setupOrFailEveryTest } from "./support/setup.js";
import type { Installation } from "./support/stores.js";

let stores: Stores;
let source: Installation;
/** Encoded bytes of every record of the source plus the end marker: the file's plaintext. */
let contentBytes: number;

const RECORDS = 50_000;
const CHUNK = 4096;

setupOrFailEveryTest(async () => {
  stores = await Stores.create("streaming", { postgres: false });
  source = await install(stores.sqlite());
  await writeRawRecords(source.raw, "bulk", RECORDS, 64, 25_000);
  const digest = new RecordDigest();
  for await (const { key, value } of source.raw.scan("")) digest.add(key, value);
  contentBytes = digest.bytes + END_BYTES;
});

afterAll(async () => {
  await stores?.cleanup();
});

describe("a large backup streams one chunk at a time", () => {
  test("50,000 records: every buffer after the header is one sealed chunk of exactly chunkBytes, but the last", async () => {
    const recordsAtChunk: number[] = [];
    const written = await writeBackupFile(source.raw, source.seal, stores.path("large.egb"), {
      chunkBytes: CHUNK,
      onProgress: (progress) => recordsAtChunk.push(progress.records),
    });
    const chunks = written.pieces.slice(1);
    const expectedChunks = Math.ceil(contentBytes / CHUNK);
    expect(chunks).toHaveLength(expectedChunks);
    expect(chunks.slice(0, -1).filter((n) => n !== CHUNK + CHUNK_OVERHEAD_BYTES)).toEqual([]);
    expect(chunks.at(-1)).toBe(contentBytes - (expectedChunks - 1) * CHUNK + CHUNK_OVERHEAD_BYTES);
    expect(written.fileBytes).toBe(written.headerBytes + contentBytes + expectedChunks * CHUNK_OVERHEAD_BYTES);
    // Records are read as chunks are written, not all before the first one.
    expect(recordsAtChunk).toHaveLength(expectedChunks);
    expect(recordsAtChunk[0]).toBeLessThan(100);
    expect(recordsAtChunk.at(-1)).toBe(RECORDS + 3);

    const bytesAtChunk: number[] = [];
    const verified = await verifyBackup(fileSource(written.path)(), source.seal, { onProgress: (p) => bytesAtChunk.push(p.bytes) });
    expect({ records: verified.records, digest: verified.digest }).toEqual(await summarizeStorage(source.raw));
    expect(verified.fileBytes).toBe(written.fileBytes);
    // The reader, too, advances one chunk at a time.
    expect(bytesAtChunk).toHaveLength(expectedChunks);
    expect(bytesAtChunk.every((bytes, i) => i === 0 || bytes - (bytesAtChunk[i - 1] as number) === (chunks[i] as number))).toBe(true);

    const target = stores.sqlite();
    const report = await restoreBackup(target, fileSource(written.path), source.seal);
    expect(report.records).toBe(RECORDS + 3);
    expect(await summarizeStorage(target)).toEqual(written.summary);
  }, 60_000);

  test("the default chunk size is 1 MiB, and out-of-range chunk sizes are refused (INVALID_ARGUMENT)", async () => {
    expect(DEFAULT_CHUNK_BYTES).toBe(1024 * 1024);
    const written = await writeBackupFile(source.raw, source.seal, stores.path("default.egb"));
    expect(written.pieces.slice(1, -1).every((n) => n === DEFAULT_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES)).toBe(true);
    expect(written.pieces).toHaveLength(1 + Math.ceil(contentBytes / DEFAULT_CHUNK_BYTES));
    for (const chunkBytes of [MIN_CHUNK_BYTES - 1, MAX_CHUNK_BYTES + 1, 1000.5, 0, -1, Number.NaN]) {
      expect(await backupErrorCode((async () => new BackupWriter(source.raw, source.seal, { chunkBytes }))())).toBe(
        BackupErrorCode.INVALID_ARGUMENT,
      );
    }
    // The bounds themselves are accepted.
    expect(() => new BackupWriter(source.raw, source.seal, { chunkBytes: MIN_CHUNK_BYTES })).not.toThrow();
    expect(() => new BackupWriter(source.raw, source.seal, { chunkBytes: MAX_CHUNK_BYTES })).not.toThrow();
  });

  test("a writer left after its first chunks releases the snapshot: the source still takes writes and backups", async () => {
    const writer = new BackupWriter(source.raw, source.seal, { chunkBytes: MIN_CHUNK_BYTES });
    let pieces = 0;
    for await (const piece of writer) {
      expect(piece.length).toBeGreaterThan(0);
      if (++pieces === 5) break;
    }
    expect(writer.summary).toBeUndefined();
    await source.raw.put("after/break", Buffer.from("x"));
    const again = await writeBackupFile(source.raw, source.seal, stores.path("after-break.egb"), { chunkBytes: 64 * 1024 });
    expect(again.summary.records).toBe(RECORDS + 3 + 1);
    await source.raw.delete("after/break");
  });

  // The record parser re-concatenates (and copies again) the whole partial record with every
  // chunk, so a value spanning n chunks costs O(n²) bytes copied. A 1 MiB value (the default
  // largest) in 256-byte chunks verifies 5–10 times slower than the same bytes as 1,024 small
  // records; a 4 MiB value in 1 KiB chunks took ~18 s here against ~0.3 s to write it. A restore
  // reads the file twice. Time is compared with that control, in the same process, to stay
  // meaningful on a loaded machine; linear parsing makes the two about equal.
  test("a value spanning thousands of chunks verifies about as fast as the same bytes in small records", async () => {
    const one = await install(stores.sqlite());
    await one.raw.put("big", Buffer.alloc(1024 * 1024, 7));
    const many = await install(stores.sqlite());
    await many.raw.transaction((tx) =>
      putEntries(
        tx,
        Array.from({ length: 1024 }, (_, i) => ({ key: `small/${String(i).padStart(4, "0")}`, value: Buffer.alloc(1024 - 20, i) })),
      ),
    );
    const big = await writeBackupFile(one.raw, one.seal, stores.path("one-big.egb"), { chunkBytes: MIN_CHUNK_BYTES });
    const small = await writeBackupFile(many.raw, many.seal, stores.path("many-small.egb"), { chunkBytes: MIN_CHUNK_BYTES });
    expect(big.pieces.length).toBeGreaterThan(4096);
    expect(Math.abs(big.pieces.length - small.pieces.length)).toBeLessThan(50);
    const time = async (file: string, keys: Installation): Promise<number> => {
      const started = performance.now();
      await verifyBackup(fileSource(file)(), keys.seal);
      return performance.now() - started;
    };
    await time(small.path, many); // warm up
    const control = await time(small.path, many);
    const spanning = await time(big.path, one);
    expect({
      control: Math.round(control),
      spanning: Math.round(spanning),
      ratio: Math.round((spanning / control) * 10) / 10,
    }).toMatchObject({
      ratio: expect.toSatisfy((ratio: number) => ratio < 3),
    });
  }, 30_000);
});
