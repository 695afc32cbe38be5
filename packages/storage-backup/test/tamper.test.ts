import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, test } from "vitest";
import {
  BackupError,
  BackupErrorCode,
  CHUNK_OVERHEAD_BYTES,
  END_BYTES,
  HEADER_FIXED_BYTES,
  HEADER_MAC_BYTES,
  RecordDigest,
  encodeEnd,
  encodeRecord,
  restoreBackup,
  summarizeStorage,
  verifyBackup,
} from "../src/index.js";
import {
  backupBytes,
  backupErrorCode,
  bufferSource,
  craftBackup,
  makeSecrets,
  readAll,
  refusedRestore,
  snapshot,
  writeSecrets,
} from "./support/backup-files.js";
import { BACKEND_TYPES, Stores, install, reopen } from "./support/stores.js";
import { setupOrFailEveryTest } from "./support/setup.js";
import type { Installation } from "./support/stores.js";

let stores: Stores;
/** The installation every file below is a backup of. */
let source: Installation;
/** A target with an installation and secrets of its own, which no refused restore may touch. */
let target: Installation;
const targetSecrets = makeSecrets(12, "target", "old");

const CHUNK = 256;
const FULL = CHUNK + CHUNK_OVERHEAD_BYTES;

/** A backup of `source` whose last chunk is short (the usual case). */
let good: Buffer;
/** A backup of `source` whose content fills its last chunk exactly. */
let fullFinal: Buffer;
let headerBytes: number;
/** The count and digest of `good`. */
let goodSummary: { records: number; digest: string };
let chunkCount: number;

/** Where each header field starts and ends (end exclusive), read from the good file. */
let fields: Record<string, [number, number]>;

setupOrFailEveryTest(async () => {
  stores = await Stores.create("tamper");
  source = await install(stores.sqlite());
  await writeSecrets(source.barrier, makeSecrets(40, "tamper"));
  // Pad the content to a multiple of CHUNK so one file can end on a full chunk.
  await source.barrier.put("pad", Buffer.alloc(100));
  const contentBytes = async (): Promise<number> => {
    let n = END_BYTES;
    for await (const { key, value } of source.raw.scan("")) n += encodeRecord(key, value).length;
    return n;
  };
  const short = (await contentBytes()) % CHUNK;
  await source.barrier.put("pad", Buffer.alloc(100 + (CHUNK - short)));
  expect((await contentBytes()) % CHUNK).toBe(0);
  fullFinal = (await backupBytes(source.raw, source.seal, { chunkBytes: CHUNK })).bytes;
  await source.barrier.put("pad", Buffer.alloc(100 + (CHUNK - short) + 100));

  const written = await backupBytes(source.raw, source.seal, { chunkBytes: CHUNK });
  good = written.bytes;
  goodSummary = written.summary;
  expect(goodSummary).toEqual(await summarizeStorage(source.raw));
  headerBytes = (written.pieces[0] as Buffer).length;
  chunkCount = written.pieces.length - 1;
  expect(chunkCount).toBeGreaterThan(50);
  expect((written.pieces.at(-1) as Buffer).length).toBe(100 + CHUNK_OVERHEAD_BYTES);

  const typeBytes = good.readUInt8(HEADER_FIXED_BYTES - 1);
  const sectionLengthAt = HEADER_FIXED_BYTES + typeBytes;
  const sectionAt = sectionLengthAt + 4;
  const macAt = sectionAt + good.readUInt32BE(sectionLengthAt);
  expect(macAt + HEADER_MAC_BYTES).toBe(headerBytes);
  fields = {
    magic: [0, 8],
    version: [8, 9],
    flags: [9, 10],
    "chunk size": [10, 14],
    time: [14, 22],
    "installation id": [22, 38],
    salt: [38, 70],
    "nonce prefix": [70, 77],
    "source type length": [77, 78],
    "source type": [78, sectionLengthAt],
    "unseal section length": [sectionLengthAt, sectionAt],
    "unseal section": [sectionAt, macAt],
    mac: [macAt, headerBytes],
  };

  target = await install(stores.sqlite());
  await writeSecrets(target.barrier, targetSecrets);
  await target.raw.put("plain/raw-record", Buffer.from("not through the barrier"));
});

afterAll(async () => {
  await stores?.cleanup();
});

/** Chunk `i` of `file` (a backup of CHUNK-sized chunks). */
function chunkAt(file: Buffer, i: number): Buffer {
  const at = headerBytes + i * FULL;
  return file.subarray(at, Math.min(at + FULL, file.length));
}

function flip(file: Buffer, at: number, bit = 0): Buffer {
  const out = Buffer.from(file);
  out[at] = (out[at] as number) ^ (1 << bit);
  return out;
}

/**
 * Runs every case as a forced restore into `target` and returns `name → code` (with a marker
 * when the target changed), for one exact comparison with the expected table.
 */
async function attempt(cases: Array<[string, Buffer]>, pieceSize = 333): Promise<Record<string, string>> {
  const before = await snapshot(target.raw);
  const out: Record<string, string> = {};
  for (const [name, bytes] of cases) {
    const { code, unchanged } = await refusedRestore(target.raw, bufferSource(bytes, pieceSize), source.seal);
    out[name] = unchanged ? code : `${code} (TARGET CHANGED)`;
  }
  expect(await snapshot(target.raw)).toEqual(before);
  return out;
}

describe("a damaged file is refused with its own code and the target is untouched (restore --force)", () => {
  test("the untouched file verifies (the control for every case below)", async () => {
    const summary = await verifyBackup(bufferSource(good)(), source.seal);
    expect(summary.fileBytes).toBe(good.length);
    expect({ records: summary.records, digest: summary.digest }).toEqual(goodSummary);
    expect((await verifyBackup(bufferSource(fullFinal)(), source.seal)).fileBytes).toBe(fullFinal.length);
    expect((fullFinal.length - headerBytes) % FULL).toBe(0);
  });

  test("the file verifies whatever pieces its bytes arrive in (single bytes, odd sizes, plain Uint8Arrays, empty pieces)", async () => {
    for (const size of [1, 7, 16, 17, FULL - 1, FULL, FULL + 1, 4096, good.length]) {
      const summary = await verifyBackup(bufferSource(good, size)(), source.seal);
      expect({ size, records: summary.records, digest: summary.digest }).toEqual({ size, ...goodSummary });
    }
    const uint8 = async function* (): AsyncIterable<Uint8Array> {
      for (let at = 0; at < good.length; at += 500) {
        yield new Uint8Array(0);
        yield new Uint8Array(good.subarray(at, at + 500)); // a copy, not a Buffer
      }
    };
    expect((await verifyBackup(uint8(), source.seal)).digest).toBe(goodSummary.digest);
  });

  test("truncated to zero bytes, and at every byte inside the header", async () => {
    const cases: Array<[string, Buffer]> = [];
    const expected: Record<string, string> = {};
    for (let length = 0; length <= headerBytes; length++) {
      cases.push([`${length}`, good.subarray(0, length)]);
      // Shorter than the magic: nothing says this is a backup; from the magic on: a cut backup.
      expected[`${length}`] = length < 8 ? BackupErrorCode.NOT_A_BACKUP : BackupErrorCode.TRUNCATED;
    }
    expect(await attempt(cases, 97)).toEqual(expected);
  });

  test("truncated at every chunk boundary and one byte either side of it", async () => {
    const cases: Array<[string, Buffer]> = [];
    const expected: Record<string, string> = {};
    for (let k = 1; k < chunkCount; k++) {
      const boundary = headerBytes + k * FULL;
      cases.push([`after chunk ${k - 1}`, good.subarray(0, boundary)]);
      expected[`after chunk ${k - 1}`] = BackupErrorCode.TRUNCATED; // the final chunk is missing
      cases.push([`after chunk ${k - 1} + 1`, good.subarray(0, boundary + 1)]);
      expected[`after chunk ${k - 1} + 1`] = BackupErrorCode.TRUNCATED; // ends inside the next chunk's tag
      // One byte short of a boundary, the last chunk is a cut-down full chunk: it cannot
      // authenticate, and nothing tells a cut from damage.
      cases.push([`after chunk ${k - 1} - 1`, good.subarray(0, boundary - 1)]);
      expected[`after chunk ${k - 1} - 1`] = BackupErrorCode.CHUNK_INVALID;
    }
    cases.push(["header + 16 bytes", good.subarray(0, headerBytes + 16)]);
    expected["header + 16 bytes"] = BackupErrorCode.TRUNCATED;
    cases.push(["header + 17 bytes", good.subarray(0, headerBytes + 17)]);
    expected["header + 17 bytes"] = BackupErrorCode.CHUNK_INVALID;
    cases.push(["last byte cut", good.subarray(0, good.length - 1)]);
    expected["last byte cut"] = BackupErrorCode.CHUNK_INVALID;
    cases.push(["full-final: last byte cut", fullFinal.subarray(0, fullFinal.length - 1)]);
    expected["full-final: last byte cut"] = BackupErrorCode.CHUNK_INVALID;
    cases.push(["full-final: last chunk cut off", fullFinal.subarray(0, fullFinal.length - FULL)]);
    expected["full-final: last chunk cut off"] = BackupErrorCode.TRUNCATED;
    expect(await attempt(cases)).toEqual(expected);
  });

  test("bytes appended after the final chunk", async () => {
    const lastFull = chunkAt(fullFinal, (fullFinal.length - headerBytes) / FULL - 1);
    const cases: Array<[string, Buffer]> = [
      ["full-final + 1 byte", Buffer.concat([fullFinal, Buffer.from([0])])],
      ["full-final + 17 bytes", Buffer.concat([fullFinal, randomBytes(17)])],
      ["full-final + a copy of its last chunk", Buffer.concat([fullFinal, lastFull])],
      ["full-final + a whole other backup", Buffer.concat([fullFinal, good])],
    ];
    const expected: Record<string, string> = {
      "full-final + 1 byte": BackupErrorCode.TRAILING_DATA,
      "full-final + 17 bytes": BackupErrorCode.TRAILING_DATA,
      "full-final + a copy of its last chunk": BackupErrorCode.TRAILING_DATA,
      "full-final + a whole other backup": BackupErrorCode.TRAILING_DATA,
    };
    expect(await attempt(cases)).toEqual(expected);
  });

  // The usual file ends on a short chunk, whose length is known only from where the file ends:
  // bytes appended to it make it a longer, unauthenticated last chunk.
  test("bytes appended after a short final chunk are refused as a damaged last chunk", async () => {
    const last = chunkAt(good, chunkCount - 1);
    expect(last.length).toBeLessThan(FULL);
    const cases: Array<[string, Buffer]> = [
      ["+ 1 byte", Buffer.concat([good, Buffer.from([0])])],
      ["+ 17 bytes", Buffer.concat([good, randomBytes(17)])],
      ["+ a copy of the last chunk", Buffer.concat([good, last])],
      ["+ a full chunk", Buffer.concat([good, chunkAt(good, 1)])],
    ];
    expect(await attempt(cases)).toEqual({
      "+ 1 byte": BackupErrorCode.CHUNK_INVALID,
      "+ 17 bytes": BackupErrorCode.CHUNK_INVALID,
      "+ a copy of the last chunk": BackupErrorCode.CHUNK_INVALID,
      "+ a full chunk": BackupErrorCode.CHUNK_INVALID,
    });
  });

  test("a flipped bit in each header field", async () => {
    const expectedByField: Record<string, string> = {
      magic: BackupErrorCode.NOT_A_BACKUP,
      version: BackupErrorCode.UNSUPPORTED_FORMAT,
      flags: BackupErrorCode.UNSUPPORTED_FORMAT,
      "chunk size": BackupErrorCode.HEADER_TAMPERED,
      time: BackupErrorCode.HEADER_TAMPERED,
      "installation id": BackupErrorCode.FOREIGN_INSTALLATION,
      salt: BackupErrorCode.HEADER_TAMPERED,
      "nonce prefix": BackupErrorCode.HEADER_TAMPERED,
      "source type length": BackupErrorCode.HEADER_TAMPERED,
      "source type": BackupErrorCode.HEADER_TAMPERED,
      "unseal section length": BackupErrorCode.HEADER_TAMPERED,
      "unseal section": BackupErrorCode.HEADER_TAMPERED,
      mac: BackupErrorCode.HEADER_TAMPERED,
    };
    const cases: Array<[string, Buffer]> = [];
    const expected: Record<string, string> = {};
    for (const [field, [start, end]] of Object.entries(fields)) {
      // The first, a middle and the last byte of the field; the lowest, a middle and the highest bit.
      for (const at of new Set([start, Math.floor((start + end - 1) / 2), end - 1])) {
        for (const bit of [0, 1, 7]) {
          const name = `${field} @${at} bit ${bit}`;
          cases.push([name, flip(good, at, bit)]);
          expected[name] = expectedByField[field] as string;
        }
      }
    }
    expect(cases.length).toBeGreaterThan(80);
    expect(await attempt(cases)).toEqual(expected);
  });

  test("a flipped bit in the first, a middle and the last chunk (its ciphertext and its tag)", async () => {
    const cases: Array<[string, Buffer]> = [];
    const expected: Record<string, string> = {};
    for (const i of [0, 1, Math.floor(chunkCount / 2), chunkCount - 2, chunkCount - 1]) {
      const at = headerBytes + i * FULL;
      const length = chunkAt(good, i).length;
      for (const [where, offset] of [
        ["first byte", 0],
        ["middle", Math.floor(length / 2)],
        ["last ciphertext byte", length - CHUNK_OVERHEAD_BYTES - 1],
        ["tag", length - 1],
      ] as const) {
        cases.push([`chunk ${i} ${where}`, flip(good, at + offset, 3)]);
        expected[`chunk ${i} ${where}`] = BackupErrorCode.CHUNK_INVALID;
      }
    }
    const lastOfFullFinal = (fullFinal.length - headerBytes) / FULL - 1;
    cases.push(["full-final: last chunk", flip(fullFinal, headerBytes + lastOfFullFinal * FULL + 5)]);
    expected["full-final: last chunk"] = BackupErrorCode.CHUNK_INVALID;
    expect(await attempt(cases)).toEqual(expected);
  });

  test("chunks swapped, dropped, duplicated or taken from another backup", async () => {
    const header = good.subarray(0, headerBytes);
    const chunks = Array.from({ length: chunkCount }, (_, i) => chunkAt(good, i));
    const without = (i: number) => Buffer.concat([header, ...chunks.filter((_, j) => j !== i)]);
    const swapped = (i: number, j: number) => {
      const copy = [...chunks];
      [copy[i], copy[j]] = [copy[j] as Buffer, copy[i] as Buffer];
      return Buffer.concat([header, ...copy]);
    };
    const middle = Math.floor(chunkCount / 2);
    // Another backup of the same installation and content: other salt, nonce prefix and MAC.
    const again = (await backupBytes(source.raw, source.seal, { chunkBytes: CHUNK })).bytes;
    expect(again.length).toBe(good.length);
    expect(again.equals(good)).toBe(false);
    const spliced = Buffer.from(good);
    chunkAt(again, middle).copy(spliced, headerBytes + middle * FULL);

    const cases: Array<[string, Buffer]> = [
      ["chunks 0 and 1 swapped", swapped(0, 1)],
      ["two middle chunks swapped", swapped(middle, middle + 1)],
      ["the last two chunks swapped", swapped(chunkCount - 2, chunkCount - 1)],
      ["first chunk dropped", without(0)],
      ["a middle chunk dropped", without(middle)],
      ["the final chunk dropped", without(chunkCount - 1)],
      [
        "a middle chunk duplicated",
        Buffer.concat([header, ...chunks.slice(0, middle + 1), chunks[middle] as Buffer, ...chunks.slice(middle + 1)]),
      ],
      ["a chunk from another backup at the same position", spliced],
      ["the header of another backup", Buffer.concat([again.subarray(0, headerBytes), ...chunks])],
      ["no chunk at all", header],
    ];
    expect(await attempt(cases)).toEqual({
      "chunks 0 and 1 swapped": BackupErrorCode.CHUNK_INVALID,
      "two middle chunks swapped": BackupErrorCode.CHUNK_INVALID,
      "the last two chunks swapped": BackupErrorCode.CHUNK_INVALID,
      "first chunk dropped": BackupErrorCode.CHUNK_INVALID,
      "a middle chunk dropped": BackupErrorCode.CHUNK_INVALID,
      "the final chunk dropped": BackupErrorCode.TRUNCATED,
      "a middle chunk duplicated": BackupErrorCode.CHUNK_INVALID,
      "a chunk from another backup at the same position": BackupErrorCode.CHUNK_INVALID,
      "the header of another backup": BackupErrorCode.CHUNK_INVALID,
      "no chunk at all": BackupErrorCode.TRUNCATED,
    });
  });

  test("another installation's backup, a random file, an unknown version or flag", async () => {
    const stranger = await install(stores.sqlite());
    await writeSecrets(stranger.barrier, makeSecrets(5, "stranger"));
    const foreign = (await backupBytes(stranger.raw, stranger.seal, { chunkBytes: CHUNK })).bytes;
    // It is a valid file: its own installation reads it.
    expect((await verifyBackup(bufferSource(foreign)(), stranger.seal)).fileBytes).toBe(foreign.length);
    const version2 = Buffer.from(good);
    version2[8] = 2;
    const flagged = Buffer.from(good);
    flagged[9] = 1;
    const cases: Array<[string, Buffer]> = [
      ["another installation", foreign],
      ["random bytes", randomBytes(8192)],
      ["a text file", Buffer.from('[storage.sqlite]\npath = "/var/lib/egide/egide.db"\n'.repeat(20))],
      ["the magic alone", good.subarray(0, 8)],
      ["version 2", version2],
      ["flags 1", flagged],
    ];
    expect(await attempt(cases)).toEqual({
      "another installation": BackupErrorCode.FOREIGN_INSTALLATION,
      "random bytes": BackupErrorCode.NOT_A_BACKUP,
      "a text file": BackupErrorCode.NOT_A_BACKUP,
      "the magic alone": BackupErrorCode.TRUNCATED,
      "version 2": BackupErrorCode.UNSUPPORTED_FORMAT,
      "flags 1": BackupErrorCode.UNSUPPORTED_FORMAT,
    });
    // The same through verifyBackup and toMatchObject, for the error itself.
    await expect(verifyBackup(bufferSource(foreign)(), source.seal)).rejects.toMatchObject({
      name: "BackupError",
      code: "FOREIGN_INSTALLATION",
    });
    await expect(verifyBackup(bufferSource(version2)(), source.seal)).rejects.toSatisfy((e) =>
      BackupError.isInstance(e, BackupErrorCode.UNSUPPORTED_FORMAT),
    );
  });

  test("authenticated content that is malformed, or whose count or digest is wrong (made with the real keys)", async () => {
    const records = [...makeSecrets(20, "crafted")].map(([key, value]) => encodeRecord(key, value));
    const digest = new RecordDigest();
    for (const record of records) digest.addEncoded(record);
    const hash = digest.digest();
    const body = Buffer.concat(records);
    const end = encodeEnd(records.length, hash);
    const craft = (content: Buffer, chunkBytes = CHUNK) => craftBackup(source.seal, content, chunkBytes);

    // The control: the same helper with well-formed content makes a file that verifies.
    const control = await verifyBackup(bufferSource(craft(Buffer.concat([body, end])))(), source.seal);
    expect({ records: control.records, digest: control.digest }).toEqual({ records: 20, digest: hash.toString("hex") });

    const badKey = encodeRecord("x", Buffer.from("v"));
    badKey[3] = 0xff; // not UTF-8
    const emptyKey = Buffer.from([1, 0, 0, 0, 0, 0, 1, 0x61]);
    const endAtChunkEnd = Buffer.concat([body, end]);
    // A padding record (3 + 8 + 4 bytes plus its value) that makes the end marker close a chunk.
    const padValue = Buffer.alloc((((CHUNK - (endAtChunkEnd.length % CHUNK) - 15) % CHUNK) + CHUNK) % CHUNK);
    const padded = Buffer.concat([body, encodeRecord("zzzz-pad", padValue)]);
    const paddedDigest = new RecordDigest();
    for (const record of records) paddedDigest.addEncoded(record);
    paddedDigest.add("zzzz-pad", padValue);
    const endFillsAChunk = Buffer.concat([padded, encodeEnd(21, paddedDigest.digest())]);
    expect(endFillsAChunk.length % CHUNK).toBe(0);

    const cases: Array<[string, Buffer]> = [
      ["count one too many", craft(Buffer.concat([body, encodeEnd(21, hash)]))],
      ["count one too few", craft(Buffer.concat([body, encodeEnd(19, hash)]))],
      ["wrong digest", craft(Buffer.concat([body, encodeEnd(20, Buffer.alloc(32, 7))]))],
      ["a record dropped, end unchanged", craft(Buffer.concat([...records.slice(1), end]))],
      ["no end marker", craft(body)],
      ["end marker cut short", craft(Buffer.concat([body, end.subarray(0, END_BYTES - 1)]))],
      ["data after the end marker", craft(Buffer.concat([body, end, Buffer.from([0])]))],
      ["a record after the end marker", craft(Buffer.concat([body, end, badKey]))],
      ["end marker at a chunk's end, then another chunk", craft(Buffer.concat([endFillsAChunk, Buffer.from([1])]))],
      ["an empty key", craft(Buffer.concat([emptyKey, body, end]))],
      ["a key that is not UTF-8", craft(Buffer.concat([badKey, body, end]))],
      ["an unknown record tag", craft(Buffer.concat([Buffer.from([2]), body, end]))],
      ["a value running past the end", craft(Buffer.concat([body, Buffer.from([1, 0, 1, 0x61, 0, 0, 0x10, 0])]))],
    ];
    // The padded control itself verifies (so the case after it fails for the extra chunk only).
    expect((await verifyBackup(bufferSource(craft(endFillsAChunk))(), source.seal)).records).toBe(21);
    const expected = Object.fromEntries(cases.map(([name]) => [name, BackupErrorCode.RECORDS_INVALID]));
    expect(await attempt(cases)).toEqual(expected);
  });
});

describe.each(BACKEND_TYPES)("a file that changes between the verification and the apply pass, into %s", (type) => {
  test("is refused in the apply pass and the transaction rolls back: the target keeps every record", async () => {
    const into = await install(await stores.open(type));
    await writeSecrets(into.barrier, targetSecrets);
    const before = await snapshot(into.raw);
    const other = Buffer.from(good);
    const moreRecords = await (async () => {
      await source.barrier.put("zzz/extra", Buffer.from("one more"));
      try {
        return (await backupBytes(source.raw, source.seal, { chunkBytes: CHUNK })).bytes;
      } finally {
        await source.barrier.delete("zzz/extra");
      }
    })();
    const secondPass: Array<[string, Buffer, string]> = [
      ["last chunk damaged", flip(other, other.length - 20), BackupErrorCode.CHUNK_INVALID],
      ["cut at a chunk boundary", good.subarray(0, headerBytes + (chunkCount - 1) * FULL), BackupErrorCode.TRUNCATED],
      ["a different valid backup", moreRecords, BackupErrorCode.RECORDS_INVALID],
    ];
    for (const [name, second, code] of secondPass) {
      let opened = 0;
      let applied = 0;
      const open = () => bufferSource(opened++ === 0 ? good : second)();
      const got = await backupErrorCode(
        restoreBackup(into.raw, open, source.seal, {
          force: true,
          onProgress: (phase, progress) => {
            if (phase === "apply") applied = progress.records;
          },
        }),
      );
      expect({ name, got, opened }).toEqual({ name, got: code, opened: 2 });
      // The apply pass had written records (after deleting the target's) before it failed.
      expect(applied).toBeGreaterThan(20);
      expect(await snapshot(into.raw)).toEqual(before);
    }
    // The target's installation still opens and holds its secrets.
    expect(await readAll((await reopen(into.raw, into.share)).barrier, targetSecrets)).toEqual({
      read: targetSecrets.size,
      mismatched: [],
      extra: [],
    });
  });
});
