import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { finished } from "node:stream/promises";
import { putEntries } from "@egide/storage-core";
import type { SqliteBackend } from "@egide/storage-sqlite";
import { afterAll, describe, expect, test } from "vitest";
import { BackupWriter, restoreBackup, summarizeStorage, verifyBackup } from "../src/index.js";
import { fileSource, snapshot, writeRawRecords } from "./support/backup-files.js";
import { BACKEND_TYPES, Stores, install } from "./support/stores.js";
import { setupOrFailEveryTest } from "./support/setup.js";

let stores: Stores;
setupOrFailEveryTest(async () => {
  stores = await Stores.create("pit");
});
afterAll(async () => {
  await stores?.cleanup();
});

const RECORDS = 3_000;

describe.each(BACKEND_TYPES)("a backup of %s", (type) => {
  test("is the store as it was when the scan began: later writes, overwrites and deletes are not in it", async () => {
    const raw = await stores.open(type);
    if (type === "sqlite") expect((raw as SqliteBackend).options.journalMode).toBe("WAL");
    const source = await install(raw);
    await writeRawRecords(raw, "data", RECORDS, 200, 1_000);
    const before = await summarizeStorage(raw);
    const recordsBefore = await snapshot(raw);
    expect(before.records).toBe(RECORDS + 3);

    const path = stores.path("pit.egb");
    const out = createWriteStream(path);
    const progress: number[] = [];
    const writer = new BackupWriter(raw, source.seal, { chunkBytes: 1024, onProgress: (p) => progress.push(p.records) });
    let recordsAtFirstChunks = 0;
    let yielded = 0;
    let changed = false;
    for await (const piece of writer) {
      if (!out.write(piece)) await once(out, "drain");
      yielded++;
      // The header and two chunks are out: the scan is under way, a few records in.
      if (yielded === 3) {
        recordsAtFirstChunks = progress.at(-1) ?? -1;
        await raw.put("data/002500", Buffer.from("overwritten after the snapshot"));
        await raw.put("data/000001", Buffer.from("overwritten, behind the scan"));
        await raw.delete("data/002900");
        await raw.put("aaa/new", Buffer.from("new, before the scan position"));
        await raw.put("zzz/new", Buffer.from("new, after the scan position"));
        await raw.transaction((tx) =>
          putEntries(
            tx,
            Array.from({ length: 600 }, (_, i) => ({ key: `data/${String(RECORDS + i).padStart(6, "0")}`, value: Buffer.alloc(50, i) })),
          ),
        );
        await source.barrier.put("secret/new", Buffer.from("through the barrier"));
        changed = true;
      }
    }
    out.end();
    await finished(out);
    expect(changed).toBe(true);
    // Two chunks of ~215-byte records: the writer had read about ten of the 3,003.
    expect(recordsAtFirstChunks).toBeGreaterThan(0);
    expect(recordsAtFirstChunks).toBeLessThan(20);

    // The store did change…
    const now = await summarizeStorage(raw);
    // aaa/new, zzz/new, 600 data records and secret/new added; data/002900 deleted.
    expect(now.records).toBe(RECORDS + 3 + 2 + 600 + 1 - 1);
    // …but the backup holds exactly what was there before.
    expect(writer.summary).toEqual(before);
    const verified = await verifyBackup(fileSource(path)(), source.seal);
    expect(verified.records).toBe(before.records);
    expect(verified.digest).toBe(before.digest);
    const target = await stores.open(type);
    await restoreBackup(target, fileSource(path), source.seal);
    expect(await snapshot(target)).toEqual(recordsBefore);
  }, 60_000);
});
