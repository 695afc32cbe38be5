/**
 * Where a backup's keys come from: an unsealed installation. `SealManager` from
 * `@egide/crypto-envelope` implements it; the type is structural so this package does not tie
 * callers to one copy of that class.
 */
export interface BackupKeySource {
  /** The installation's public 16-byte fingerprint (the same for every backup it makes). */
  installationId(): Uint8Array;
  /** The file's AES-256-GCM and HMAC-SHA256 keys for `salt`; the caller wipes them. */
  backupKeys(salt: Uint8Array): { encryptionKey: Buffer; macKey: Buffer };
}
