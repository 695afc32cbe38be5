import { KEY_BYTES, TAG_BYTES, gcmOpen, gcmSeal } from "./aes-gcm.js";
import type { AesKey } from "./aes-gcm.js";
import type { RandomSource } from "./random-source.js";
import { HEADER_BYTES, RecordType, VALUE_RECORD_OVERHEAD, ValueLayout, readHeader, writeHeader } from "./record-format.js";

/** An encryption key version, as the record functions need it. */
export interface VersionedKey {
  version: number;
  key: AesKey;
}

/**
 * Unwrapped DEKs by storage key, each with the record head it came from: the header and the
 * DEK wrap (nonce, wrapped DEK, tag), the first {@link ValueLayout.VALUE_NONCE} bytes. Together
 * with the storage key these are every input of the unwrap, so a hit (same key, same head
 * bytes) stands for an unwrap that would succeed with the same result; any edit of those bytes
 * misses and takes the full path.
 */
export interface DekCache {
  /** The DEK cached for `storageKey` if its head equals `head`. */
  get(storageKey: string, head: Uint8Array): AesKey | undefined;
  /** Called with a DEK that just decrypted its value; the cache copies what it keeps. */
  set(storageKey: string, head: Uint8Array, dek: Buffer): void;
}

/**
 * Encrypts one value for `storageKey`: a fresh DEK from `random` encrypts the value, and the
 * encryption key `ek` wraps the DEK. The DEK is wiped before returning.
 *
 * Associated data: the DEK wrap binds the whole header (format, type, key version) and the
 * storage key; the value binds format, type and storage key, but not the key version, so that
 * rewrapping to a new version leaves the value ciphertext byte-identical.
 */
export function sealValue(storageKey: string, plaintext: Uint8Array, ek: VersionedKey, random: RandomSource): Buffer {
  const record = Buffer.allocUnsafe(VALUE_RECORD_OVERHEAD + plaintext.byteLength);
  writeHeader(record, RecordType.VALUE, ek.version);
  const nonces = record.subarray(ValueLayout.WRAP_NONCE, ValueLayout.WRAPPED_DEK);
  random.fill(nonces);
  const valueNonce = record.subarray(ValueLayout.VALUE_NONCE, ValueLayout.CIPHERTEXT);
  random.fill(valueNonce);
  const dek = Buffer.allocUnsafe(KEY_BYTES);
  try {
    random.fill(dek);
    const sealed = gcmSeal(dek, valueNonce, plaintext, valueAad(record, storageKey));
    sealed.ciphertext.copy(record, ValueLayout.CIPHERTEXT);
    sealed.tag.copy(record, ValueLayout.CIPHERTEXT + plaintext.byteLength);
    writeWrappedDek(record, storageKey, dek, ek, random, false);
  } finally {
    dek.fill(0);
  }
  return record;
}

/**
 * Decrypts a value record read at `storageKey`. `keyFor` returns the encryption key of a
 * version (or throws when the version is unknown or retired). Any alteration, a record read at
 * another key, a short record or an unknown format fails as `CORRUPT`.
 */
export function openValue(storageKey: string, record: Uint8Array, keyFor: (version: number) => AesKey, cache?: DekCache): Buffer {
  const { keyVersion } = readHeader(record, RecordType.VALUE, VALUE_RECORD_OVERHEAD);
  const head = record.subarray(0, ValueLayout.VALUE_NONCE);
  const cached = cache?.get(storageKey, head);
  const dek = cached ?? unwrapDek(record, storageKey, keyFor(keyVersion));
  try {
    const plaintext = openWithDek(record, storageKey, dek);
    if (cache && cached === undefined) cache.set(storageKey, head, dek as Buffer);
    return plaintext;
  } finally {
    if (cached === undefined) (dek as Buffer).fill(0);
  }
}

/** The key version a value record says it is wrapped under (after checking format and type). */
export function valueKeyVersion(record: Uint8Array): number {
  return readHeader(record, RecordType.VALUE, VALUE_RECORD_OVERHEAD).keyVersion;
}

/**
 * The same record with its DEK rewrapped under `ek`: a new header version, wrap nonce, wrapped
 * DEK and wrap tag. The value nonce, ciphertext and tag are copied unchanged. The whole record
 * is authenticated first (the old wrap and the value), so a corrupt record is reported, never
 * "repaired" into one that looks valid.
 */
export function rewrapValue(
  storageKey: string,
  record: Uint8Array,
  keyFor: (version: number) => AesKey,
  ek: VersionedKey,
  random: RandomSource,
): Buffer {
  const { keyVersion } = readHeader(record, RecordType.VALUE, VALUE_RECORD_OVERHEAD);
  const dek = unwrapDek(record, storageKey, keyFor(keyVersion));
  try {
    openWithDek(record, storageKey, dek).fill(0);
    const rewrapped = Buffer.from(record);
    writeHeader(rewrapped, RecordType.VALUE, ek.version);
    writeWrappedDek(rewrapped, storageKey, dek, ek, random, true);
    return rewrapped;
  } finally {
    dek.fill(0);
  }
}

function openWithDek(record: Uint8Array, storageKey: string, dek: AesKey): Buffer {
  const tagStart = record.byteLength - TAG_BYTES;
  return gcmOpen(
    dek,
    record.subarray(ValueLayout.VALUE_NONCE, ValueLayout.CIPHERTEXT),
    record.subarray(ValueLayout.CIPHERTEXT, tagStart),
    record.subarray(tagStart),
    valueAad(record, storageKey),
  );
}

function writeWrappedDek(
  record: Buffer,
  storageKey: string,
  dek: Uint8Array,
  ek: VersionedKey,
  random: RandomSource,
  freshNonce: boolean,
): void {
  const wrapNonce = record.subarray(ValueLayout.WRAP_NONCE, ValueLayout.WRAPPED_DEK);
  if (freshNonce) random.fill(wrapNonce);
  const wrapped = gcmSeal(ek.key, wrapNonce, dek, wrapAad(record, storageKey));
  wrapped.ciphertext.copy(record, ValueLayout.WRAPPED_DEK);
  wrapped.tag.copy(record, ValueLayout.WRAP_TAG);
}

function unwrapDek(record: Uint8Array, storageKey: string, ek: AesKey): Buffer {
  return gcmOpen(
    ek,
    record.subarray(ValueLayout.WRAP_NONCE, ValueLayout.WRAPPED_DEK),
    record.subarray(ValueLayout.WRAPPED_DEK, ValueLayout.WRAP_TAG),
    record.subarray(ValueLayout.WRAP_TAG, ValueLayout.VALUE_NONCE),
    wrapAad(record, storageKey),
  );
}

// header (6 bytes: format, type, key version) ‖ storage key (UTF-8)
function wrapAad(record: Uint8Array, storageKey: string): Buffer {
  const keyBytes = Buffer.byteLength(storageKey, "utf8");
  const aad = Buffer.allocUnsafe(HEADER_BYTES + keyBytes);
  aad.set(record.subarray(0, HEADER_BYTES));
  aad.write(storageKey, HEADER_BYTES, "utf8");
  return aad;
}

// format ‖ type (2 bytes) ‖ storage key (UTF-8): no key version, so a rewrap keeps the value
// ciphertext valid; the version is bound by the DEK wrap instead.
function valueAad(record: Uint8Array, storageKey: string): Buffer {
  const keyBytes = Buffer.byteLength(storageKey, "utf8");
  const aad = Buffer.allocUnsafe(2 + keyBytes);
  aad[0] = record[0] ?? 0;
  aad[1] = record[1] ?? 0;
  aad.write(storageKey, 2, "utf8");
  return aad;
}
