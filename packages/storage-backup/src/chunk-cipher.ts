import { TAG_BYTES, gcmOpen, gcmSeal } from "@egide/crypto-envelope/internal";

/** Bytes a chunk adds to its plaintext (the GCM tag). */
export const CHUNK_OVERHEAD_BYTES = TAG_BYTES;

/**
 * The nonce of chunk `index`: the file's 7-byte prefix, the chunk counter (uint32 big-endian)
 * and a final-chunk flag (1 on the last chunk only). This is the STREAM construction: a chunk
 * moved to another position, or a non-final chunk presented as the last one (truncation at a
 * chunk boundary), fails authentication.
 */
export function chunkNonce(prefix: Uint8Array, index: number, final: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.set(prefix, 0);
  nonce.writeUInt32BE(index, 7);
  nonce.writeUInt8(final ? 1 : 0, 11);
  return nonce;
}

/** Encrypts one chunk: ciphertext ‖ tag. The header MAC is the associated data, binding the chunk to its file. */
export function sealChunk(
  key: Uint8Array,
  prefix: Uint8Array,
  index: number,
  final: boolean,
  plaintext: Uint8Array,
  headerMac: Uint8Array,
): Buffer {
  const { ciphertext, tag } = gcmSeal(key, chunkNonce(prefix, index, final), plaintext, headerMac);
  return Buffer.concat([ciphertext, tag]);
}

/** Decrypts one chunk (ciphertext ‖ tag); throws when it does not authenticate at this position and finality. */
export function openChunk(
  key: Uint8Array,
  prefix: Uint8Array,
  index: number,
  final: boolean,
  sealed: Buffer,
  headerMac: Uint8Array,
): Buffer {
  const cut = sealed.length - CHUNK_OVERHEAD_BYTES;
  return gcmOpen(key, chunkNonce(prefix, index, final), sealed.subarray(0, cut), sealed.subarray(cut), headerMac);
}
