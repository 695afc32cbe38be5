import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, statSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { putEntries } from "@egide/storage-core";
import type { ScanEntry, StorageBackend } from "@egide/storage-core";
import { BackupError, BackupWriter, encodeHeaderBody, headerMac, restoreBackup, sealChunk, summarizeStorage } from "../../src/index.js";
import type { BackupHeader, BackupKeySource, BackupWriterOptions, RecordSummary, RestoreOptions } from "../../src/index.js";

/** What writing a backup file produced. */
export interface WrittenBackup {
  path: string;
  summary: RecordSummary;
  /** Length of every buffer the writer yielded: the header, then one per chunk. */
  pieces: number[];
  headerBytes: number;
  fileBytes: number;
}

/** Writes a backup of `raw` to `path`, recording the length of every buffer the writer yields. */
export async function writeBackupFile(
  raw: StorageBackend,
  keys: BackupKeySource,
  path: string,
  options: BackupWriterOptions = {},
): Promise<WrittenBackup> {
  const writer = new BackupWriter(raw, keys, options);
  const pieces: number[] = [];
  await pipeline(async function* () {
    for await (const piece of writer) {
      pieces.push(piece.length);
      yield piece;
    }
  }, createWriteStream(path));
  if (!writer.summary) throw new Error("the writer finished without a summary");
  return { path, summary: writer.summary, pieces, headerBytes: pieces[0] as number, fileBytes: statSync(path).size };
}

/** Every buffer a writer yields, in memory. */
export async function backupBytes(
  raw: StorageBackend,
  keys: BackupKeySource,
  options: BackupWriterOptions = {},
): Promise<{ bytes: Buffer; pieces: Buffer[]; summary: RecordSummary }> {
  const writer = new BackupWriter(raw, keys, options);
  const pieces: Buffer[] = [];
  for await (const piece of writer) pieces.push(piece);
  if (!writer.summary) throw new Error("the writer finished without a summary");
  return { bytes: Buffer.concat(pieces), pieces, summary: writer.summary };
}

/** A file read the way a restore reads one. */
export function fileSource(path: string): () => AsyncIterable<Uint8Array> {
  return () => createReadStream(path, { highWaterMark: 4096 });
}

/** `bytes` delivered in pieces of `size` (odd sizes exercise the reader's reassembly). */
export function bufferSource(bytes: Buffer, size = 333): () => AsyncIterable<Uint8Array> {
  return async function* () {
    for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, Math.min(at + size, bytes.length));
  };
}

/** The code of the BackupError `promise` rejects with; fails the test on success or another error. */
export async function backupErrorCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (BackupError.isInstance(error)) {
      if (!BackupError.isInstance(error, error.code)) throw new Error("isInstance disagrees with the code");
      return error.code;
    }
    throw error;
  }
  return "SUCCEEDED";
}

/** Copies `raw`'s records (the `.egide/` ones too) as a map, for exact comparisons. */
export async function snapshot(raw: StorageBackend): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const { key, value } of raw.scan("")) out.set(key, value.toString("hex"));
  return out;
}

/** Restores and returns the error code, checking that the target's summary did not change. */
export async function refusedRestore(
  target: StorageBackend,
  open: () => AsyncIterable<Uint8Array>,
  keys: BackupKeySource,
  options: RestoreOptions = { force: true },
): Promise<{ code: string; unchanged: boolean }> {
  const before = await summarizeStorage(target);
  const code = await backupErrorCode(restoreBackup(target, open, keys, options));
  const after = await summarizeStorage(target);
  return { code, unchanged: before.records === after.records && before.digest === after.digest };
}

// ---- secrets --------------------------------------------------------------------------------

const FOLDERS = ["app", "ünïcødé", "秘密/鍵", "emoji/🔐", "Ελληνικά", "deep/a/b/c/d", "spaces in keys", "zz", "Ça-va/ñ", "кириллица"];
const NAMES = ["secret", "clé", "ключ", "鍵", "🗝️", "plain"];
/** Value sizes around the chunk sizes the tests use, plus values spanning many chunks. */
const SIZES = [0, 1, 15, 16, 17, 31, 64, 100, 255, 256, 257, 300, 511, 512, 513, 700, 1000, 1023, 1024, 1025, 2000];

/** A deterministic pseudo-random value of `size` bytes. */
export function seededValue(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let at = 0, i = 0; at < size; i++) at += createHash("sha256").update(`${seed}:${i}`).digest().copy(out, at);
  return out;
}

/**
 * `n` secrets with unicode keys in nested folders and varied sizes (a few span many chunks);
 * values depend on `seed`, keys on `tag` (so two sets with different tags share no key).
 */
export function makeSecrets(n: number, seed = "s", tag = ""): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (let i = 0; i < n; i++) {
    const key = `${FOLDERS[i % FOLDERS.length]}/${NAMES[i % NAMES.length]}-${i}${tag === "" ? "" : `-${tag}`}`;
    const size = i % 97 === 5 ? 20_000 + i : (SIZES[i % SIZES.length] as number);
    out.set(key, seededValue(`${seed}:${key}`, size));
  }
  return out;
}

/** Writes `secrets` through `store` (a barrier): the first half one put at a time, the rest in one transaction. */
export async function writeSecrets(store: StorageBackend, secrets: Map<string, Buffer>): Promise<void> {
  const entries = [...secrets].map(([key, value]) => ({ key, value }));
  const half = Math.floor(entries.length / 2);
  for (const { key, value } of entries.slice(0, half)) await store.put(key, value);
  await store.transaction((tx) => putEntries(tx, entries.slice(half)));
}

/** Fails unless `store` (a barrier) holds exactly `secrets`, each readable. */
export async function readAll(
  store: StorageBackend,
  secrets: Map<string, Buffer>,
): Promise<{ read: number; mismatched: string[]; extra: string[] }> {
  const mismatched: string[] = [];
  let read = 0;
  for (const [key, value] of secrets) {
    const got = await store.get(key);
    if (got === null || !got.equals(value)) mismatched.push(key);
    else read++;
  }
  const extra: string[] = [];
  for await (const { key } of store.scan("")) if (!secrets.has(key)) extra.push(key);
  return { read, mismatched, extra };
}

/** `count` raw records `prefix/000000…` with `valueBytes`-byte values, in transactions of `perTx`. */
export async function writeRawRecords(
  raw: StorageBackend,
  prefix: string,
  count: number,
  valueBytes: number,
  perTx = 25_000,
): Promise<void> {
  const seed = randomBytes(valueBytes + 64);
  for (let start = 0; start < count; start += perTx) {
    const batch: ScanEntry[] = [];
    for (let i = start; i < Math.min(count, start + perTx); i++) {
      const value = Buffer.allocUnsafe(valueBytes);
      seed.copy(value, 0, i % 64, (i % 64) + valueBytes);
      value.writeUInt32BE(i, 0);
      batch.push({ key: `${prefix}/${String(i).padStart(6, "0")}`, value });
    }
    await raw.transaction((tx) => putEntries(tx, batch));
  }
}

// ---- hand-made files --------------------------------------------------------------------------

/**
 * A backup file whose authenticated content is exactly `content` (whatever it holds), made with
 * the installation's real keys: what a writer with the keys but a bug (or an attacker holding
 * the master key) could produce. The last chunk gets the final flag.
 */
export function craftBackup(keys: BackupKeySource, content: Buffer, chunkBytes: number, unsealRecords: ScanEntry[] = []): Buffer {
  const header: BackupHeader = {
    chunkBytes,
    createdAt: new Date(),
    installationId: Buffer.from(keys.installationId()),
    salt: randomBytes(32),
    noncePrefix: randomBytes(7),
    sourceType: "sqlite",
    unsealRecords,
  };
  const { encryptionKey, macKey } = keys.backupKeys(header.salt);
  const body = encodeHeaderBody(header);
  const mac = headerMac(macKey, body);
  const parts = [body, mac];
  const count = Math.max(1, Math.ceil(content.length / chunkBytes));
  for (let i = 0; i < count; i++) {
    const plain = content.subarray(i * chunkBytes, Math.min(content.length, (i + 1) * chunkBytes));
    parts.push(sealChunk(encryptionKey, header.noncePrefix, i, i === count - 1, plain, mac));
  }
  return Buffer.concat(parts);
}
