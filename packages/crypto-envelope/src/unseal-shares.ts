import { combine, split } from "shamir-secret-sharing";
import { KEY_BYTES } from "./aes-gcm.js";
import { SealError, SealErrorCode } from "./seal-error.js";

/** The most shares (and the highest threshold) Shamir over GF(256) allows. */
export const MAX_SHARES = 255;

/** Shares and threshold of a Shamir seal. */
export interface ShareScheme {
  /** How many shares are produced (n). */
  shares: number;
  /** How many are needed to unseal (t). */
  threshold: number;
}

/**
 * Checks 1 ≤ t ≤ n ≤ 255, and that t = 1 only with n = 1: one share out of several would make
 * every share the whole key, which is a copy of the key and not a split.
 */
export function checkShareScheme(scheme: ShareScheme): void {
  const { shares, threshold } = scheme;
  if (!Number.isInteger(shares) || shares < 1 || shares > MAX_SHARES) {
    throw new SealError(SealErrorCode.INVALID_ARGUMENT, `shares must be an integer from 1 to ${MAX_SHARES}, got ${String(shares)}`);
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > shares) {
    throw new SealError(
      SealErrorCode.INVALID_ARGUMENT,
      `threshold must be an integer from 1 to shares (${shares}), got ${String(threshold)}`,
    );
  }
  if (threshold === 1 && shares > 1) {
    throw new SealError(SealErrorCode.INVALID_ARGUMENT, "threshold must be greater than 1 when there is more than one share");
  }
}

/** The byte length of every share of a scheme: the key itself for 1-of-1, else the key plus Shamir's x coordinate. */
export function shareLength(scheme: ShareScheme): number {
  return scheme.shares === 1 ? KEY_BYTES : KEY_BYTES + 1;
}

/**
 * Splits the unseal key into `scheme.shares` shares with the audited `shamir-secret-sharing`
 * package. 1-of-1 needs no polynomial (and the library's minimum threshold is 2): the share is
 * a copy of the key.
 */
export async function splitUnsealKey(unsealKey: Uint8Array, scheme: ShareScheme): Promise<Buffer[]> {
  checkShareScheme(scheme);
  if (scheme.shares === 1) return [Buffer.from(unsealKey)];
  // The library rejects Node Buffers: it wants plain Uint8Arrays.
  const secret = new Uint8Array(unsealKey);
  try {
    const shares = await split(secret, scheme.shares, scheme.threshold);
    return shares.map((share) => {
      const copy = Buffer.from(share);
      share.fill(0);
      return copy;
    });
  } finally {
    secret.fill(0);
  }
}

/**
 * Recombines `threshold` shares into a candidate unseal key. It is only a candidate: whether
 * it is right is decided by the root key record's authentication tag. Library errors (such as
 * two shares with the same x coordinate) become the same generic failure.
 */
export async function combineShares(shares: readonly Uint8Array[], scheme: ShareScheme): Promise<Buffer> {
  if (scheme.shares === 1) {
    const only = shares[0];
    if (only === undefined) throw new SealError(SealErrorCode.UNSEAL_FAILED, "unseal failed");
    return Buffer.from(only);
  }
  const copies = shares.map((share) => new Uint8Array(share));
  try {
    const secret = await combine(copies);
    const key = Buffer.from(secret);
    secret.fill(0);
    return key;
  } catch {
    throw new SealError(SealErrorCode.UNSEAL_FAILED, "unseal failed: the shares do not open this installation");
  } finally {
    for (const copy of copies) copy.fill(0);
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const HEX = /^[0-9a-fA-F]*$/;

/**
 * Decodes a share given as canonical base64 (Vault's `keys_base64`) or hex (Vault's `keys`)
 * and checks its length. Non-canonical base64 (bad padding, stray bits, whitespace) and any
 * other length are refused rather than repaired. Accepts raw bytes too.
 */
export function decodeShare(share: string | Uint8Array, expectedBytes: number): Buffer {
  let bytes: Buffer;
  if (typeof share !== "string") {
    bytes = Buffer.from(share);
  } else if (share.length === expectedBytes * 2 && HEX.test(share)) {
    bytes = Buffer.from(share, "hex");
  } else if (BASE64.test(share) && share.length % 4 === 0) {
    bytes = Buffer.from(share, "base64");
    if (bytes.toString("base64") !== share) {
      bytes.fill(0);
      throw new SealError(SealErrorCode.INVALID_SHARE, "share is not canonical base64");
    }
  } else {
    throw new SealError(SealErrorCode.INVALID_SHARE, "share must be base64 or hex");
  }
  if (bytes.byteLength !== expectedBytes) {
    const length = bytes.byteLength;
    bytes.fill(0);
    throw new SealError(SealErrorCode.INVALID_SHARE, `share must be ${expectedBytes} bytes, got ${length}`);
  }
  return bytes;
}
