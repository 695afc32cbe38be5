import { createHmac } from "node:crypto";
import { constantTimeEqual } from "@egide/crypto-envelope";
import type { ScanEntry } from "@egide/storage-core";
import { BackupError, BackupErrorCode } from "./backup-error.js";
import { encodeRecord } from "./record-encoding.js";
import { RecordParser } from "./record-parser.js";

/** The first 8 bytes of every backup file. */
export const BACKUP_MAGIC = Buffer.from("EGIDEBAK", "ascii");
/** The format this code writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;
/** Plaintext bytes per chunk unless told otherwise (1 MiB: few GCM calls, bounded memory). */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** The smallest chunk size accepted (small chunks make the format's edge cases cheap to test). */
export const MIN_CHUNK_BYTES = 256;
/** The largest chunk size accepted: a reader never buffers more than this per chunk. */
export const MAX_CHUNK_BYTES = 16 * 1024 * 1024;
/** Length of the installation fingerprint. */
export const INSTALLATION_ID_BYTES = 16;
/** Length of the per-file HKDF salt. */
export const SALT_BYTES = 32;
/** Length of the random nonce prefix; the chunk counter and final flag fill the rest of the 12 bytes. */
export const NONCE_PREFIX_BYTES = 7;
/** Length of the header MAC (HMAC-SHA256). */
export const HEADER_MAC_BYTES = 32;
/** The longest source backend type name. */
export const MAX_SOURCE_TYPE_BYTES = 64;
/** The largest unseal-records section (three small records in practice). */
export const MAX_UNSEAL_SECTION_BYTES = 64 * 1024;
/** Bytes before the source type: magic, version, flags, chunk size, time, id, salt, prefix, type length. */
export const HEADER_FIXED_BYTES = 8 + 1 + 1 + 4 + 8 + INSTALLATION_ID_BYTES + SALT_BYTES + NONCE_PREFIX_BYTES + 1;

/** What a backup's header says. Everything in it is public; the MAC makes it tamper-evident. */
export interface BackupHeader {
  /** Plaintext bytes in every chunk but the last. */
  chunkBytes: number;
  /** When the snapshot was taken. */
  createdAt: Date;
  /** Which installation made it (see `BackupKeySource.installationId`). */
  installationId: Buffer;
  /** The HKDF salt of this file's keys. */
  salt: Buffer;
  /** The first 7 bytes of every chunk nonce. */
  noncePrefix: Buffer;
  /** The backend type the snapshot was read from ("sqlite", "postgresql", …). */
  sourceType: string;
  /**
   * The installation's seal configuration, root key and keyring records exactly as stored
   * (the first in plaintext, the others encrypted): with the unseal shares they recover the
   * master key, so a backup can be opened without the installation it came from (a restore
   * into a blank database).
   */
  unsealRecords: ScanEntry[];
}

/** The header's bytes without the MAC. */
export function encodeHeaderBody(header: BackupHeader): Buffer {
  const unseal = Buffer.concat(header.unsealRecords.map((record) => encodeRecord(record.key, record.value)));
  if (unseal.length > MAX_UNSEAL_SECTION_BYTES) throw new BackupError(BackupErrorCode.INVALID_ARGUMENT, "the unseal records are too large");
  checkChunkBytes(header.chunkBytes);
  const type = Buffer.from(header.sourceType, "utf8");
  if (type.length < 1 || type.length > MAX_SOURCE_TYPE_BYTES) {
    throw new BackupError(BackupErrorCode.INVALID_ARGUMENT, `the source type must be 1–${MAX_SOURCE_TYPE_BYTES} bytes`);
  }
  const body = Buffer.alloc(HEADER_FIXED_BYTES + type.length);
  let at = BACKUP_MAGIC.copy(body, 0);
  at = body.writeUInt8(BACKUP_FORMAT_VERSION, at);
  at = body.writeUInt8(0, at); // flags: none defined
  at = body.writeUInt32BE(header.chunkBytes, at);
  at = body.writeBigUInt64BE(BigInt(header.createdAt.getTime()), at);
  at += header.installationId.copy(body, at);
  at += header.salt.copy(body, at);
  at += header.noncePrefix.copy(body, at);
  at = body.writeUInt8(type.length, at);
  type.copy(body, at);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(unseal.length);
  return Buffer.concat([body, length, unseal]);
}

/** HMAC-SHA256 of the header body under the file's MAC key. */
export function headerMac(macKey: Uint8Array, body: Uint8Array): Buffer {
  return createHmac("sha256", macKey).update(body).digest();
}

/**
 * Parses the fixed part of a header body (the caller then reads the source type, the unseal
 * section's length and bytes, and the MAC). Checks the magic, version and flags; the MAC is
 * checked by the caller once it has the keys.
 */
export function decodeHeaderFixed(fixed: Buffer): { header: Omit<BackupHeader, "sourceType" | "unsealRecords">; sourceTypeBytes: number } {
  if (fixed.length < HEADER_FIXED_BYTES || !fixed.subarray(0, BACKUP_MAGIC.length).equals(BACKUP_MAGIC)) {
    throw new BackupError(BackupErrorCode.NOT_A_BACKUP, "this is not an Egide backup file (no EGIDEBAK header)");
  }
  let at = BACKUP_MAGIC.length;
  const version = fixed.readUInt8(at++);
  if (version !== BACKUP_FORMAT_VERSION) {
    throw new BackupError(
      BackupErrorCode.UNSUPPORTED_FORMAT,
      `backup format version ${version} is not supported (this version reads ${BACKUP_FORMAT_VERSION})`,
    );
  }
  const flags = fixed.readUInt8(at++);
  if (flags !== 0) throw new BackupError(BackupErrorCode.UNSUPPORTED_FORMAT, `backup header flags ${flags} are not supported`);
  const chunkBytes = fixed.readUInt32BE(at);
  at += 4;
  const createdMs = fixed.readBigUInt64BE(at);
  at += 8;
  const installationId = Buffer.from(fixed.subarray(at, at + INSTALLATION_ID_BYTES));
  at += INSTALLATION_ID_BYTES;
  const salt = Buffer.from(fixed.subarray(at, at + SALT_BYTES));
  at += SALT_BYTES;
  const noncePrefix = Buffer.from(fixed.subarray(at, at + NONCE_PREFIX_BYTES));
  at += NONCE_PREFIX_BYTES;
  const sourceTypeBytes = fixed.readUInt8(at);
  if (chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES || sourceTypeBytes < 1 || sourceTypeBytes > MAX_SOURCE_TYPE_BYTES) {
    // Out of range: altered (a genuine writer never produces these), reported as such.
    throw new BackupError(BackupErrorCode.HEADER_TAMPERED, "the backup header is damaged (a field is out of range)");
  }
  return { header: { chunkBytes, createdAt: new Date(Number(createdMs)), installationId, salt, noncePrefix }, sourceTypeBytes };
}

/**
 * Parses the unseal-records section (a sequence of record encodings). Its bytes were read
 * before the MAC was checked: a malformed section is reported as a damaged header.
 */
export function decodeUnsealRecords(section: Buffer): ScanEntry[] {
  try {
    return RecordParser.parseRecords(section);
  } catch (cause) {
    throw new BackupError(BackupErrorCode.HEADER_TAMPERED, "the backup header is damaged (its unseal records are malformed)", { cause });
  }
}

/** Checks `mac` against the body in constant time; a mismatch is `HEADER_TAMPERED`. */
export function verifyHeaderMac(macKey: Uint8Array, body: Uint8Array, mac: Uint8Array): void {
  if (!constantTimeEqual(headerMac(macKey, body), mac)) {
    throw new BackupError(BackupErrorCode.HEADER_TAMPERED, "the backup header failed authentication: it was altered");
  }
}

/** Fails with `INVALID_ARGUMENT` unless `chunkBytes` is an integer in the accepted range. */
export function checkChunkBytes(chunkBytes: number): void {
  if (!Number.isInteger(chunkBytes) || chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES) {
    throw new BackupError(
      BackupErrorCode.INVALID_ARGUMENT,
      `the chunk size must be an integer from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES} bytes`,
    );
  }
}
