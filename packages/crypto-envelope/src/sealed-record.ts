import { TAG_BYTES, gcmOpen, gcmSeal } from "./aes-gcm.js";
import type { RandomSource } from "./random-source.js";
import { HEADER_BYTES, SEALED_RECORD_OVERHEAD, SealedLayout, readHeader, writeHeader } from "./record-format.js";
import type { RecordType } from "./record-format.js";

/**
 * Encrypts one of the barrier's own records (root key, keyring, rewrap progress) directly
 * under `key`. Associated data: the header, the storage key, then `extraAad` (the root key
 * record binds the seal configuration this way).
 */
export function sealSystemRecord(
  type: RecordType,
  storageKey: string,
  plaintext: Uint8Array,
  key: Uint8Array,
  random: RandomSource,
  extraAad: Uint8Array = Buffer.alloc(0),
): Buffer {
  const record = Buffer.allocUnsafe(SEALED_RECORD_OVERHEAD + plaintext.byteLength);
  writeHeader(record, type, 0);
  const nonce = record.subarray(SealedLayout.NONCE, SealedLayout.CIPHERTEXT);
  random.fill(nonce);
  const sealed = gcmSeal(key, nonce, plaintext, systemAad(record, storageKey, extraAad));
  sealed.ciphertext.copy(record, SealedLayout.CIPHERTEXT);
  sealed.tag.copy(record, SealedLayout.CIPHERTEXT + plaintext.byteLength);
  return record;
}

/** Decrypts a record written by {@link sealSystemRecord}; any mismatch is `CORRUPT`. */
export function openSystemRecord(
  type: RecordType,
  storageKey: string,
  record: Uint8Array,
  key: Uint8Array,
  extraAad: Uint8Array = Buffer.alloc(0),
): Buffer {
  readHeader(record, type, SEALED_RECORD_OVERHEAD);
  const tagStart = record.byteLength - TAG_BYTES;
  return gcmOpen(
    key,
    record.subarray(SealedLayout.NONCE, SealedLayout.CIPHERTEXT),
    record.subarray(SealedLayout.CIPHERTEXT, tagStart),
    record.subarray(tagStart),
    systemAad(record, storageKey, extraAad),
  );
}

function systemAad(record: Uint8Array, storageKey: string, extraAad: Uint8Array): Buffer {
  return Buffer.concat([record.subarray(0, HEADER_BYTES), Buffer.from(storageKey, "utf8"), extraAad]);
}
