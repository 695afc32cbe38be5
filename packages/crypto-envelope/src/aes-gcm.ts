import { createCipheriv, createDecipheriv } from "node:crypto";
import { StorageError, StorageErrorCode } from "@egide/storage-core";

/** AES-256 key length in bytes. */
export const KEY_BYTES = 32;
/** GCM nonce length in bytes (96 bits, the only length used and accepted). */
export const NONCE_BYTES = 12;
/** GCM tag length in bytes (128 bits, the only length used and accepted). */
export const TAG_BYTES = 16;

const ALGORITHM = "aes-256-gcm";

/** Ciphertext and tag of one AES-256-GCM encryption. */
export interface GcmSealed {
  ciphertext: Buffer;
  tag: Buffer;
}

/**
 * AES-256-GCM encryption with a caller-supplied 96-bit nonce. Callers draw the nonce from the
 * CSPRNG (or use a key exactly once, as DEKs are).
 */
export function gcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): GcmSealed {
  checkSizes(key, nonce);
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = plaintext.byteLength === 0 ? Buffer.alloc(0) : cipher.update(plaintext);
  cipher.final();
  return { ciphertext, tag: cipher.getAuthTag() };
}

/**
 * AES-256-GCM decryption. A wrong key, nonce, associated data or tag, a tag of any length but
 * 16 bytes (Node would otherwise accept truncated tags down to 4 bytes) or a nonce of any
 * length but 12 fails as `CORRUPT`; wrong plaintext is never returned.
 */
export function gcmOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Buffer {
  checkSizes(key, nonce);
  if (tag.byteLength !== TAG_BYTES) {
    throw new StorageError(StorageErrorCode.CORRUPT, `authentication tag must be ${TAG_BYTES} bytes, got ${tag.byteLength}`);
  }
  const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plaintext = ciphertext.byteLength === 0 ? Buffer.alloc(0) : decipher.update(ciphertext);
  try {
    decipher.final();
  } catch (cause) {
    plaintext.fill(0);
    throw new StorageError(StorageErrorCode.CORRUPT, "authentication failed: the record was altered, moved or encrypted under another key", { cause });
  }
  return plaintext;
}

function checkSizes(key: Uint8Array, nonce: Uint8Array): void {
  if (key.byteLength !== KEY_BYTES) throw new StorageError(StorageErrorCode.INTERNAL, `AES-256 key must be ${KEY_BYTES} bytes`);
  if (nonce.byteLength !== NONCE_BYTES) {
    throw new StorageError(StorageErrorCode.CORRUPT, `nonce must be ${NONCE_BYTES} bytes, got ${nonce.byteLength}`);
  }
}
