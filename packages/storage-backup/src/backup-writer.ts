import { randomBytes } from "node:crypto";
import { KEYRING_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY } from "@egide/crypto-envelope";
import type { ScanEntry, StorageBackend } from "@egide/storage-core";
import { DEFAULT_CHUNK_BYTES, NONCE_PREFIX_BYTES, SALT_BYTES, checkChunkBytes, encodeHeaderBody, headerMac } from "./backup-header.js";
import type { BackupHeader } from "./backup-header.js";
import type { BackupKeySource } from "./backup-key-source.js";
import type { BackupProgress } from "./backup-reader.js";
import { sealChunk } from "./chunk-cipher.js";
import { RecordDigest } from "./record-digest.js";
import type { RecordSummary } from "./record-digest.js";
import { encodeEnd, encodeRecord } from "./record-encoding.js";

/** The records a backup header carries so the file can be opened with the unseal shares alone. */
export const UNSEAL_RECORD_KEYS: readonly string[] = [SEAL_CONFIG_KEY, ROOT_KEY_KEY, KEYRING_KEY];

/** Options of {@link BackupWriter}. */
export interface BackupWriterOptions {
  /** Plaintext bytes per chunk (default 1 MiB). */
  chunkBytes?: number;
  /** Called after every chunk with the records and file bytes so far. */
  onProgress?: (progress: BackupProgress) => void;
}

/**
 * A backup of every raw record of `source` (the adapter itself, under any barrier: values stay
 * encrypted as stored, `.egide/` records included), as the bytes of a backup file. The records
 * come from one `scan("")`, which every backend serves as one snapshot (a REPEATABLE READ READ
 * ONLY transaction on PostgreSQL, a read transaction on SQLite): the file is a point-in-time
 * copy however long it takes to write. Memory stays at about two chunks whatever the size.
 *
 * Iterate it once and write the buffers out in order; {@link summary} is set after the last.
 */
export class BackupWriter implements AsyncIterable<Buffer> {
  readonly #source: StorageBackend;
  readonly #keys: BackupKeySource;
  readonly #chunkBytes: number;
  readonly #onProgress: ((progress: BackupProgress) => void) | undefined;
  #summary: RecordSummary | undefined;

  constructor(source: StorageBackend, keys: BackupKeySource, options: BackupWriterOptions = {}) {
    this.#chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    checkChunkBytes(this.#chunkBytes);
    this.#source = source;
    this.#keys = keys;
    this.#onProgress = options.onProgress;
  }

  /** Records and digest of the finished file. */
  get summary(): RecordSummary | undefined {
    return this.#summary;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    const unsealRecords: ScanEntry[] = [];
    for (const key of UNSEAL_RECORD_KEYS) {
      const value = await this.#source.get(key);
      if (value !== null) unsealRecords.push({ key, value });
    }
    const header: BackupHeader = {
      chunkBytes: this.#chunkBytes,
      createdAt: new Date(),
      installationId: Buffer.from(this.#keys.installationId()),
      salt: randomBytes(SALT_BYTES),
      noncePrefix: randomBytes(NONCE_PREFIX_BYTES),
      sourceType: this.#source.type,
      unsealRecords,
    };
    const body = encodeHeaderBody(header);
    const { encryptionKey, macKey } = this.#keys.backupKeys(header.salt);
    const mac = headerMac(macKey, body);
    macKey.fill(0);
    const chunk = Buffer.alloc(this.#chunkBytes);
    let fill = 0;
    let index = 0;
    let fileBytes = body.length + mac.length;
    const digest = new RecordDigest();
    const seal = (final: boolean): Buffer => {
      const sealed = sealChunk(encryptionKey, header.noncePrefix, index++, final, chunk.subarray(0, fill), mac);
      fill = 0;
      fileBytes += sealed.length;
      this.#onProgress?.({ records: digest.count, bytes: fileBytes });
      return sealed;
    };
    try {
      yield Buffer.concat([body, mac]);
      // A full chunk is sealed only once more bytes follow, so the last chunk is never empty
      // and carries the final flag even when the content fills it exactly.
      const append = function* (bytes: Buffer): Generator<Buffer> {
        let at = 0;
        while (at < bytes.length) {
          if (fill === chunk.length) yield seal(false);
          const n = Math.min(chunk.length - fill, bytes.length - at);
          bytes.copy(chunk, fill, at, at + n);
          fill += n;
          at += n;
        }
      };
      for await (const { key, value } of this.#source.scan("")) {
        const encoded = encodeRecord(key, value);
        digest.addEncoded(encoded);
        yield* append(encoded);
      }
      const records = digest.count;
      const hash = digest.digest();
      yield* append(encodeEnd(records, hash));
      yield seal(true);
      this.#summary = { records, digest: hash.toString("hex") };
    } finally {
      encryptionKey.fill(0);
      chunk.fill(0);
    }
  }
}
