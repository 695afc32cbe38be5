import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { KEY_BYTES, NONCE_BYTES, TAG_BYTES } from "./aes-gcm.js";

/**
 * The only record format this version writes and reads. A record with any other first byte is
 * rejected as `CORRUPT`, never guessed at: a future format gets a new byte and a reader that
 * knows it.
 */
export const RECORD_FORMAT_V1 = 0x01;

/** What a record holds; the second byte of every record. */
export const RecordType = {
  /** A value written through the barrier, under a per-value DEK. */
  VALUE: 0x01,
  /** The master key, under a key derived from the unseal key. */
  ROOT_KEY: 0x02,
  /** The keyring (versions, states, encryption counts), under a key derived from the master key. */
  KEYRING: 0x03,
  /** Progress of a background rewrap, under the same key as the keyring. */
  REWRAP_PROGRESS: 0x04,
} as const;

/** One of {@link RecordType}'s values. */
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Format byte, record type, key version (uint32 big-endian). */
export const HEADER_BYTES = 6;

/** Offsets of a value record (see the package README for the byte-by-byte layout). */
export const ValueLayout = {
  WRAP_NONCE: HEADER_BYTES,
  WRAPPED_DEK: HEADER_BYTES + NONCE_BYTES,
  WRAP_TAG: HEADER_BYTES + NONCE_BYTES + KEY_BYTES,
  VALUE_NONCE: HEADER_BYTES + NONCE_BYTES + KEY_BYTES + TAG_BYTES,
  CIPHERTEXT: HEADER_BYTES + NONCE_BYTES + KEY_BYTES + TAG_BYTES + NONCE_BYTES,
} as const;

/** Bytes a value record adds to its plaintext: header, wrapped DEK with nonce and tag, value nonce and tag (94). */
export const VALUE_RECORD_OVERHEAD = ValueLayout.CIPHERTEXT + TAG_BYTES;

/** Offsets of a sealed system record (root key, keyring, rewrap progress). */
export const SealedLayout = {
  NONCE: HEADER_BYTES,
  CIPHERTEXT: HEADER_BYTES + NONCE_BYTES,
} as const;

/** Bytes a sealed system record adds to its plaintext (34). */
export const SEALED_RECORD_OVERHEAD = SealedLayout.CIPHERTEXT + TAG_BYTES;

/** The fixed fields at the start of every record. */
export interface RecordHeader {
  type: RecordType;
  keyVersion: number;
}

/** Writes the 6-byte header into `target` at offset 0. */
export function writeHeader(target: Buffer, type: RecordType, keyVersion: number): void {
  target[0] = RECORD_FORMAT_V1;
  target[1] = type;
  target.writeUInt32BE(keyVersion, 2);
}

/**
 * Reads and checks a record's header: the format byte must be {@link RECORD_FORMAT_V1}, the
 * type `expected`, and the record at least `minimumBytes` long. Anything else is `CORRUPT`.
 */
export function readHeader(record: Uint8Array, expected: RecordType, minimumBytes: number): RecordHeader {
  if (record.byteLength < minimumBytes) {
    throw new StorageError(
      StorageErrorCode.CORRUPT,
      `record is ${record.byteLength} bytes, shorter than the ${minimumBytes} its format needs`,
    );
  }
  if (record[0] !== RECORD_FORMAT_V1) {
    throw new StorageError(StorageErrorCode.CORRUPT, `unknown record format 0x${hexByte(record[0])}`);
  }
  if (record[1] !== expected) {
    throw new StorageError(StorageErrorCode.CORRUPT, `record type 0x${hexByte(record[1])} where 0x${hexByte(expected)} was expected`);
  }
  return { type: expected, keyVersion: headerKeyVersion(record) };
}

/** Bytes 2–5 of a record (big-endian), unchecked: call after {@link readHeader} or a length check. */
export function headerKeyVersion(record: Uint8Array): number {
  return (((record[2] ?? 0) << 24) >>> 0) + ((record[3] ?? 0) << 16) + ((record[4] ?? 0) << 8) + (record[5] ?? 0);
}

function hexByte(value: number | undefined): string {
  return (value ?? 0).toString(16).padStart(2, "0");
}
