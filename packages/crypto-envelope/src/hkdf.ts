import { hkdfSync } from "node:crypto";
import { KEY_BYTES } from "./aes-gcm.js";

/**
 * The HKDF-SHA256 labels of the key hierarchy. Each is versioned and used NUL-terminated, so
 * no label is a prefix of another's info string and a context appended after the NUL cannot
 * turn one label into another.
 */
export const HkdfLabel = {
  /** Encryption key version v: info = label ‖ 0x00 ‖ uint32be(v). */
  ENCRYPTION_KEY: "egide/v1/ek",
  /** The key that encrypts the master key, from the unseal key. */
  ROOT_KEY_WRAP: "egide/v1/root-key",
  /** The key that encrypts the barrier's own records (keyring, rewrap progress), from the master key. */
  SYSTEM: "egide/v1/system",
  /** A public fingerprint of the master key that names the installation (backups check it). */
  INSTALLATION_ID: "egide/v1/installation-id",
  /** The keys of one backup file, with the file's own salt: context "encryption" or "authentication". */
  BACKUP: "egide/v1/backup",
} as const;

/** One of {@link HkdfLabel}'s values. */
export type HkdfLabel = (typeof HkdfLabel)[keyof typeof HkdfLabel];

/** The HKDF info string: the label's UTF-8 bytes, a NUL, then `context`. */
export function hkdfInfo(label: string, context: Uint8Array = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(label, "utf8"), Buffer.from([0]), context]);
}

/** HKDF-SHA256 (RFC 5869) of `length` bytes into a Buffer the caller owns and wipes. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number = KEY_BYTES): Buffer {
  // hkdfSync returns a fresh ArrayBuffer; wrapping it (no copy) keeps one zeroable copy only.
  return Buffer.from(hkdfSync("sha256", ikm, salt, info, length));
}

/** The 32-byte key for `label` (and `context`) under `ikm`. */
export function deriveKey(ikm: Uint8Array, salt: Uint8Array, label: HkdfLabel, context?: Uint8Array): Buffer {
  return hkdfSha256(ikm, salt, hkdfInfo(label, context));
}

/** The context of encryption key version `version`: uint32 big-endian. */
export function versionContext(version: number): Buffer {
  const context = Buffer.alloc(4);
  context.writeUInt32BE(version);
  return context;
}
