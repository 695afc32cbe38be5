import type { ScanEntry } from "@egide/storage-core";
import { constantTimeEqual } from "@egide/crypto-envelope";
import { BackupError, BackupErrorCode } from "./backup-error.js";
import {
  BACKUP_MAGIC,
  HEADER_FIXED_BYTES,
  HEADER_MAC_BYTES,
  MAX_UNSEAL_SECTION_BYTES,
  decodeHeaderFixed,
  decodeUnsealRecords,
  verifyHeaderMac,
} from "./backup-header.js";
import type { BackupHeader } from "./backup-header.js";
import type { BackupKeySource } from "./backup-key-source.js";
import { ByteReader } from "./byte-reader.js";
import { CHUNK_OVERHEAD_BYTES, openChunk } from "./chunk-cipher.js";
import { RecordParser } from "./record-parser.js";
import type { RecordSummary } from "./record-digest.js";

/** How far a read has got: records and file bytes. */
export interface BackupProgress {
  records: number;
  bytes: number;
}

/** What a whole, verified backup held. */
export interface BackupSummary extends RecordSummary {
  header: BackupHeader;
  /** The file's size in bytes. */
  fileBytes: number;
}

/**
 * Reads a backup file's header (public, so a caller can find the keys to open it: the
 * installation it names, or its unseal records) without authenticating it yet.
 */
export async function readBackupHeader(input: ByteReader): Promise<{ header: BackupHeader; body: Buffer; mac: Buffer }> {
  const fixed = await input.read(HEADER_FIXED_BYTES);
  if (fixed.length < HEADER_FIXED_BYTES) {
    const looksLikeBackup = fixed.length >= BACKUP_MAGIC.length && fixed.subarray(0, BACKUP_MAGIC.length).equals(BACKUP_MAGIC);
    if (looksLikeBackup) throw new BackupError(BackupErrorCode.TRUNCATED, "the backup file ends inside its header");
    throw new BackupError(BackupErrorCode.NOT_A_BACKUP, "this is not an Egide backup file (no EGIDEBAK header)");
  }
  const { header, sourceTypeBytes } = decodeHeaderFixed(fixed);
  const typeAndLength = await input.read(sourceTypeBytes + 4);
  if (typeAndLength.length < sourceTypeBytes + 4)
    throw new BackupError(BackupErrorCode.TRUNCATED, "the backup file ends inside its header");
  const sectionLength = typeAndLength.readUInt32BE(sourceTypeBytes);
  if (sectionLength > MAX_UNSEAL_SECTION_BYTES)
    throw new BackupError(BackupErrorCode.HEADER_TAMPERED, "the backup header is damaged (a field is out of range)");
  const section = await input.read(sectionLength);
  const mac = await input.read(HEADER_MAC_BYTES);
  if (section.length < sectionLength || mac.length < HEADER_MAC_BYTES)
    throw new BackupError(BackupErrorCode.TRUNCATED, "the backup file ends inside its header");
  const body = Buffer.concat([fixed, typeAndLength, section]);
  const sourceType = typeAndLength.toString("utf8", 0, sourceTypeBytes);
  return { header: { ...header, sourceType, unsealRecords: decodeUnsealRecords(section) }, body, mac: Buffer.from(mac) };
}

/**
 * Opens a backup for reading and checks its header: that it was made by the installation
 * `keys` belongs to (`FOREIGN_INSTALLATION` otherwise), and its MAC (`HEADER_TAMPERED`).
 *
 * {@link batches} then yields records as each chunk authenticates, in file order. Whether the
 * file is whole (final chunk present, nothing after it, count and digest right) is known only
 * after the last batch: a caller that changes anything must verify the whole file first
 * ({@link verifyBackup}) or do its changes in a transaction it rolls back when this throws.
 */
export class BackupReader {
  readonly header: BackupHeader;
  readonly #input: ByteReader;
  readonly #encryptionKey: Buffer;
  readonly #mac: Buffer;
  readonly #onProgress: ((progress: BackupProgress) => void) | undefined;
  #fileBytes: number;
  #summary: BackupSummary | undefined;
  #started = false;

  private constructor(
    input: ByteReader,
    header: BackupHeader,
    encryptionKey: Buffer,
    mac: Buffer,
    headerBytes: number,
    onProgress?: (progress: BackupProgress) => void,
  ) {
    this.#input = input;
    this.header = header;
    this.#encryptionKey = encryptionKey;
    this.#mac = mac;
    this.#fileBytes = headerBytes;
    this.#onProgress = onProgress;
  }

  /**
   * Reads and authenticates the header of `source`. `keys` may also be a function that is given
   * the (not yet authenticated) header and returns the key source, for callers that find the
   * keys from the header itself (its unseal records).
   */
  static async open(
    source: AsyncIterable<Uint8Array>,
    keys: BackupKeySource | ((header: BackupHeader) => Promise<BackupKeySource>),
    options: { onProgress?: (progress: BackupProgress) => void } = {},
  ): Promise<BackupReader> {
    const input = new ByteReader(source);
    try {
      const { header, body, mac } = await readBackupHeader(input);
      const keySource = typeof keys === "function" ? await keys(header) : keys;
      if (!constantTimeEqual(Buffer.from(keySource.installationId()), header.installationId)) {
        throw new BackupError(
          BackupErrorCode.FOREIGN_INSTALLATION,
          "this backup belongs to another installation: it was made under a different master key (or its header was altered)",
        );
      }
      const { encryptionKey, macKey } = keySource.backupKeys(header.salt);
      try {
        verifyHeaderMac(macKey, body, mac);
      } catch (error) {
        encryptionKey.fill(0);
        throw error;
      } finally {
        macKey.fill(0);
      }
      return new BackupReader(input, header, encryptionKey, mac, body.length + mac.length, options.onProgress);
    } catch (error) {
      await input.close();
      throw error;
    }
  }

  /** The verified summary, once {@link batches} has run to its end. */
  get summary(): BackupSummary | undefined {
    return this.#summary;
  }

  /** The records, a chunk's worth at a time; throws a `BackupError` on the first problem. Single use. */
  async *batches(): AsyncGenerator<ScanEntry[]> {
    if (this.#started) throw new BackupError(BackupErrorCode.INVALID_ARGUMENT, "a backup reader reads its file once");
    this.#started = true;
    const parser = new RecordParser();
    const { chunkBytes } = this.header;
    const full = chunkBytes + CHUNK_OVERHEAD_BYTES;
    try {
      for (let index = 0; ; index++) {
        const sealed = await this.#input.read(full);
        if (sealed.length === 0)
          throw new BackupError(BackupErrorCode.TRUNCATED, "the backup file ends after its header: it holds no chunk");
        if (sealed.length <= CHUNK_OVERHEAD_BYTES)
          throw new BackupError(BackupErrorCode.TRUNCATED, `the backup file ends inside chunk ${index}`);
        const final = sealed.length < full || (await this.#input.atEnd());
        const plaintext = this.#open(index, final, sealed);
        this.#fileBytes += sealed.length;
        const records = parser.push(plaintext);
        plaintext.fill(0);
        this.#onProgress?.({ records: parser.count, bytes: this.#fileBytes });
        if (records.length > 0) yield records;
        if (final) break;
        if (index === 0xffffffff)
          throw new BackupError(BackupErrorCode.RECORDS_INVALID, "the backup has more chunks than the format allows");
      }
      const { records, digest } = parser.finish();
      this.#summary = { header: this.header, records, digest: digest.toString("hex"), fileBytes: this.#fileBytes };
    } finally {
      this.#encryptionKey.fill(0);
      await this.#input.close();
    }
  }

  /** Opens chunk `index`, telling truncation and appended data apart from damage when it fails. */
  #open(index: number, final: boolean, sealed: Buffer): Buffer {
    const attempt = (asFinal: boolean): Buffer | undefined => {
      try {
        return openChunk(this.#encryptionKey, this.header.noncePrefix, index, asFinal, sealed, this.#mac);
      } catch {
        return undefined;
      }
    };
    const plaintext = attempt(final);
    if (plaintext) return plaintext;
    const full = sealed.length === this.header.chunkBytes + CHUNK_OVERHEAD_BYTES;
    if (final && full && attempt(false)) {
      throw new BackupError(BackupErrorCode.TRUNCATED, `the backup file ends after chunk ${index}: its final chunk is missing`);
    }
    if (!final && attempt(true)) {
      throw new BackupError(BackupErrorCode.TRAILING_DATA, `bytes follow the final chunk (${index}) of the backup file`);
    }
    throw new BackupError(
      BackupErrorCode.CHUNK_INVALID,
      final && !full
        ? `chunk ${index}, the last in the file, failed authentication: the file was cut short, extended or damaged`
        : `chunk ${index} failed authentication: the file was damaged, or its chunks were reordered or dropped`,
    );
  }
}

/**
 * Reads the whole backup and checks everything (header MAC, every chunk in order, the final
 * chunk, nothing after it, count and digest), keeping nothing: constant memory.
 */
export async function verifyBackup(
  source: AsyncIterable<Uint8Array>,
  keys: BackupKeySource | ((header: BackupHeader) => Promise<BackupKeySource>),
  options: { onProgress?: (progress: BackupProgress) => void } = {},
): Promise<BackupSummary> {
  const reader = await BackupReader.open(source, keys, options);
  for await (const batch of reader.batches()) batch.length = 0;
  return reader.summary as BackupSummary;
}
