import { HkdfLabel, deriveKey, hkdfInfo, hkdfSha256 } from "./hkdf.js";
import { SealError, SealErrorCode } from "./seal-error.js";
import type { SealState } from "./seal-state.js";

/** The length of `SealManager.installationId()`. */
const INSTALLATION_ID_BYTES = 16;

/**
 * A 16-byte fingerprint of the master key: the same for every process and every backup of
 * one installation, different for another installation, and useless for finding the key
 * (HKDF is one-way). Fails with `SEALED` unless unsealed.
 */
export function installationId(state: SealState): Buffer {
  const { masterKey } = state.requireUnsealed();
  const config = state.config;
  if (!config) throw new SealError(SealErrorCode.NOT_INITIALIZED, "the storage holds no installation");
  return hkdfSha256(masterKey.bytes, config.salt, hkdfInfo(HkdfLabel.INSTALLATION_ID), INSTALLATION_ID_BYTES);
}

/**
 * The two keys of one backup file, derived from the master key and the file's random `salt`
 * (so every file has keys of its own): AES-256-GCM for its chunks and HMAC-SHA256 for its
 * header. The caller wipes both. Fails with `SEALED` unless unsealed.
 */
export function backupKeys(state: SealState, salt: Uint8Array): { encryptionKey: Buffer; macKey: Buffer } {
  const { masterKey } = state.requireUnsealed();
  // Distinct HKDF contexts: the file's cipher key and MAC key must never be the same key.
  return {
    encryptionKey: deriveKey(masterKey.bytes, salt, HkdfLabel.BACKUP, Buffer.from("encryption")),
    macKey: deriveKey(masterKey.bytes, salt, HkdfLabel.BACKUP, Buffer.from("authentication")),
  };
}
