import { SealError, SealErrorCode } from "./seal-error.js";
import { systemRandom } from "./random-source.js";
import type { RandomSource } from "./random-source.js";

/**
 * Where the seal manager reports what it does. Messages and fields never hold a share, a key
 * or a value; pino and console both fit.
 */
export interface SealLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Options of `SealManager.open`. */
export interface SealManagerOptions {
  /** Where keys, DEKs and nonces come from. Default: the system CSPRNG. */
  random?: RandomSource;
  /** Where events are reported. Default: nowhere. */
  logger?: SealLogger;
  /**
   * Encryptions under one key version after which a new version is added automatically, well
   * below the 2^32 random-nonce limit of AES-GCM. Default 2^30.
   */
  rotateAfterEncryptions?: number;
  /**
   * How many encryptions a process reserves in the stored keyring at a time. Counts are
   * reserved before use, so the stored count does not fall behind the real one, across
   * processes and crashes; unused reservations only make it overestimate. The one exception:
   * a transaction that writes more values than are left overdraws, and the overdraft is
   * recorded by the next reservation (lost only if the process dies in between). Default 10,000.
   */
  encryptionsPerReservation?: number;
  /**
   * The longest a process keeps encrypting under the version it last reserved before reading
   * the keyring again, which bounds how long a rotation made by another process goes unseen.
   * Default 30 s.
   */
  keyringMaxAgeMs?: number;
  /**
   * How many unwrapped DEKs to keep, so reading a value again costs one AES-GCM call instead
   * of two; 0 disables. Emptied on seal and on every keyring change. Default 10,000 (a few MB).
   */
  dekCacheEntries?: number;
  /**
   * A manager that never writes its storage: unsealing makes no encryption reservation, and
   * encrypting is refused with `READ_ONLY`. For offline tools that only read (a backup of a
   * stopped installation, the keys of a backup file's own records).
   */
  readOnly?: boolean;
}

/** {@link SealManagerOptions} checked once, with every default filled in. */
export interface SealSettings {
  readonly random: RandomSource;
  readonly logger: SealLogger | undefined;
  readonly rotateAfter: number;
  readonly reservation: number;
  readonly keyringMaxAgeMs: number;
  readonly dekCacheEntries: number;
  readonly readOnly: boolean;
}

const DEFAULT_ROTATE_AFTER = 2 ** 30;
const DEFAULT_RESERVATION = 10_000;
const DEFAULT_KEYRING_MAX_AGE_MS = 30_000;
const DEFAULT_DEK_CACHE_ENTRIES = 10_000;
// The hard ceiling for rotateAfterEncryptions: 2^32 random 96-bit nonces under one key is
// where NIST SP 800-38D stops; the configured limit must leave room below it.
const GCM_RANDOM_NONCE_LIMIT = 2 ** 32;

/**
 * Checks `options` and fills in the defaults. Fails with `INVALID_ARGUMENT` on a value that
 * is not a positive integer, or a rotation limit too close to AES-GCM's nonce limit.
 */
export function resolveSealSettings(options: SealManagerOptions): SealSettings {
  const rotateAfter = positiveInteger(options.rotateAfterEncryptions ?? DEFAULT_ROTATE_AFTER, "rotateAfterEncryptions");
  if (rotateAfter > GCM_RANDOM_NONCE_LIMIT / 2) {
    throw new SealError(SealErrorCode.INVALID_ARGUMENT, `rotateAfterEncryptions must be at most 2^31, well below AES-GCM's 2^32 limit`);
  }
  // A reservation larger than the rotation limit would rotate on every reservation.
  const reservation = Math.min(
    positiveInteger(options.encryptionsPerReservation ?? DEFAULT_RESERVATION, "encryptionsPerReservation"),
    rotateAfter,
  );
  const keyringMaxAgeMs = positiveInteger(options.keyringMaxAgeMs ?? DEFAULT_KEYRING_MAX_AGE_MS, "keyringMaxAgeMs");
  const cacheEntries = options.dekCacheEntries ?? DEFAULT_DEK_CACHE_ENTRIES;
  const dekCacheEntries = cacheEntries === 0 ? 0 : positiveInteger(cacheEntries, "dekCacheEntries");
  return {
    random: options.random ?? systemRandom,
    logger: options.logger,
    rotateAfter,
    reservation,
    keyringMaxAgeMs,
    dekCacheEntries,
    readOnly: options.readOnly === true,
  };
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SealError(SealErrorCode.INVALID_ARGUMENT, `${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}
