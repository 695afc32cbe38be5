import type { ScanEntry } from "@egide/storage-core";
import { constantTimeEqual } from "@egide/crypto-envelope";
import { BackupError, BackupErrorCode } from "./backup-error.js";
import { RecordDigest } from "./record-digest.js";
import { END_BYTES, END_TAG, RECORD_HEAD_BYTES, RECORD_TAG } from "./record-encoding.js";

/** Keys are decoded strictly: a malformed one is refused, never rewritten to U+FFFD. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function malformed(detail: string): BackupError {
  return new BackupError(BackupErrorCode.RECORDS_INVALID, `the backup's content is malformed: ${detail}`);
}

/**
 * Turns the decrypted chunk stream back into records, one chunk at a time: a record may span
 * chunks, so at most one partial record is held between pushes. After the last chunk,
 * {@link finish} checks that the end marker closed the stream exactly there and that its count
 * and digest match the records seen.
 */
export class RecordParser {
  // The bytes of an incomplete record, kept as pieces and joined only once enough have arrived
  // (`#need`): a value spanning many chunks is copied once, not once per chunk.
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #need = 0;
  #digest = new RecordDigest();
  #ended = false;
  #endCount = 0n;
  #endDigest: Buffer | undefined;

  /** The records of `bytes`, which must hold whole records and nothing else (no end marker). */
  static parseRecords(bytes: Buffer): ScanEntry[] {
    const parser = new RecordParser();
    const records = parser.push(bytes);
    if (parser.#ended || parser.#pendingBytes > 0) throw malformed("a cut record or an end marker among whole records");
    return records;
  }

  /** Records parsed so far. */
  get count(): number {
    return this.#digest.count;
  }

  /** Parses what `bytes` completes; returns the whole records it holds. `bytes` may be reused afterwards. */
  push(bytes: Buffer): ScanEntry[] {
    if (this.#ended && bytes.length > 0) throw malformed("data follows the end marker");
    if (bytes.length === 0) return [];
    if (this.#pendingBytes + bytes.length < this.#need) {
      this.#pending.push(Buffer.from(bytes));
      this.#pendingBytes += bytes.length;
      return [];
    }
    const data = this.#pendingBytes === 0 ? bytes : Buffer.concat([...this.#pending, bytes]);
    const out: ScanEntry[] = [];
    let at = 0;
    let need = 0;
    for (;;) {
      const left = data.length - at;
      if (left < 1) break;
      const tag = data[at];
      if (tag === END_TAG) {
        if (left < END_BYTES) {
          need = END_BYTES;
          break;
        }
        this.#endCount = data.readBigUInt64BE(at + 1);
        this.#endDigest = Buffer.from(data.subarray(at + 9, at + END_BYTES));
        this.#ended = true;
        at += END_BYTES;
        if (at !== data.length) throw malformed("data follows the end marker");
        break;
      }
      if (tag !== RECORD_TAG) throw malformed(`unknown record tag ${tag}`);
      if (left < RECORD_HEAD_BYTES) {
        need = RECORD_HEAD_BYTES;
        break;
      }
      const keyLength = data.readUInt16BE(at + 1);
      if (keyLength === 0) throw malformed("a record with an empty key");
      const valueLengthAt = at + RECORD_HEAD_BYTES + keyLength;
      if (data.length < valueLengthAt + 4) {
        need = RECORD_HEAD_BYTES + keyLength + 4;
        break;
      }
      const valueLength = data.readUInt32BE(valueLengthAt);
      const end = valueLengthAt + 4 + valueLength;
      if (data.length < end) {
        need = end - at;
        break;
      }
      let key: string;
      try {
        key = strictUtf8.decode(data.subarray(at + RECORD_HEAD_BYTES, valueLengthAt));
      } catch {
        throw malformed("a key that is not UTF-8");
      }
      // Copies: the chunk buffer is wiped and reused, and values must outlive it.
      out.push({ key, value: Buffer.from(data.subarray(valueLengthAt + 4, end)) });
      this.#digest.addEncoded(data.subarray(at, end));
      at = end;
    }
    const rest = data.subarray(at);
    this.#pending = rest.length === 0 ? [] : [Buffer.from(rest)];
    this.#pendingBytes = rest.length;
    this.#need = need;
    return out;
  }

  /** After the final chunk: the stream ended with an end marker whose count and digest match. */
  finish(): { records: number; digest: Buffer } {
    if (!this.#ended || this.#pendingBytes > 0) throw malformed("the final chunk does not end with the end marker");
    const records = this.#digest.count;
    const digest = this.#digest.digest();
    if (this.#endCount !== BigInt(records)) {
      throw new BackupError(
        BackupErrorCode.RECORDS_INVALID,
        `the backup says it holds ${this.#endCount} records, but ${records} were read`,
      );
    }
    if (!constantTimeEqual(digest, this.#endDigest as Buffer)) {
      throw new BackupError(BackupErrorCode.RECORDS_INVALID, "the backup's record digest does not match its records");
    }
    return { records, digest };
  }
}
