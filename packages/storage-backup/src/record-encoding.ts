/**
 * How records travel inside a backup's chunks, and what the record digest covers:
 *
 *   record: 0x01 ‖ uint16 key length ‖ key (UTF-8) ‖ uint32 value length ‖ value
 *   end:    0x00 ‖ uint64 record count ‖ SHA-256 of every record's encoding, in order
 *
 * Keys are at most 1,024 UTF-8 bytes (the storage key rules), so 16 bits suffice.
 */
export const RECORD_TAG = 0x01;
/** The tag of the end marker that closes the record stream. */
export const END_TAG = 0x00;
/** Bytes of a record's encoding before its key. */
export const RECORD_HEAD_BYTES = 1 + 2;
/** Bytes of the end marker: tag, count, digest. */
export const END_BYTES = 1 + 8 + 32;

/** The encoding of one record. */
export function encodeRecord(key: string, value: Uint8Array): Buffer {
  const keyBytes = Buffer.from(key, "utf8");
  const out = Buffer.allocUnsafe(RECORD_HEAD_BYTES + keyBytes.length + 4 + value.byteLength);
  out.writeUInt8(RECORD_TAG, 0);
  out.writeUInt16BE(keyBytes.length, 1);
  keyBytes.copy(out, RECORD_HEAD_BYTES);
  let at = RECORD_HEAD_BYTES + keyBytes.length;
  at = out.writeUInt32BE(value.byteLength, at);
  out.set(value, at);
  return out;
}

/** The end marker for `count` records whose encodings hash to `digest`. */
export function encodeEnd(count: number, digest: Uint8Array): Buffer {
  const out = Buffer.alloc(END_BYTES);
  out.writeUInt8(END_TAG, 0);
  out.writeBigUInt64BE(BigInt(count), 1);
  out.set(digest, 9);
  return out;
}
