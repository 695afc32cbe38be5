/**
 * The barrier's own records live under this top-level folder of the underlying storage. It is
 * hidden from listings and scans through the barrier, and every barrier operation on a key
 * inside it is refused as `INVALID_KEY`, so data written through the barrier can never
 * overwrite the seal configuration or the keyring.
 */
export const RESERVED_PREFIX = ".egide/";

/** Plaintext: shares, threshold, salt. The one record readable while sealed. */
export const SEAL_CONFIG_KEY = `${RESERVED_PREFIX}seal-config`;
/** The master key, encrypted under a key derived from the unseal key. */
export const ROOT_KEY_KEY = `${RESERVED_PREFIX}root-key`;
/** The keyring, encrypted under a key derived from the master key. */
export const KEYRING_KEY = `${RESERVED_PREFIX}keyring`;
/** Where a background rewrap records how far it got, encrypted like the keyring. */
export const REWRAP_PROGRESS_KEY = `${RESERVED_PREFIX}rewrap-progress`;

/** Whether `key` (a full storage key or a listing path) is inside the reserved folder. */
export function isReservedKey(key: string): boolean {
  return key.startsWith(RESERVED_PREFIX);
}
