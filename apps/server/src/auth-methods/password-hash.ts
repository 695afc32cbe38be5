import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt cost parameters, stored with every hash so that they can be raised later. */
export interface ScryptParameters {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** A stored password: the parameters, the salt and the derived key (never the password). */
export interface PasswordHash extends ScryptParameters {
  /** 16 random bytes, base64. */
  salt: string;
  /** The derived key, base64. */
  hash: string;
}

/** The parameters new hashes use: N = 2^15, r = 8, p = 1 (32 MiB of memory, tens of ms of CPU). */
export const DEFAULT_SCRYPT_PARAMETERS: Readonly<ScryptParameters> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

const KEY_BYTES = 32;
const SALT_BYTES = 16;
// The parameters a stored hash may ask for: anything outside is refused rather than run (a
// corrupted or hostile entry must not make one login cost gigabytes or minutes).
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

/** Hashes `password` with a fresh random salt. */
export async function hashPassword(password: string, parameters: ScryptParameters = DEFAULT_SCRYPT_PARAMETERS): Promise<PasswordHash> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, parameters);
  return { ...parameters, salt: salt.toString("base64"), hash: key.toString("base64") };
}

/**
 * Whether `password` matches `stored`, compared in constant time. Always runs one scrypt with
 * the stored parameters, whatever the outcome.
 */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, "base64");
  const key = await derive(password, Buffer.from(stored.salt, "base64"), stored);
  return expected.length === key.length && timingSafeEqual(key, expected);
}

/**
 * A hash no password matches (random salt and key, default parameters): checked against when
 * the user does not exist, so that an unknown user costs the same scrypt as a wrong password
 * and timing does not tell which users exist.
 */
export function dummyPasswordHash(): PasswordHash {
  return {
    ...DEFAULT_SCRYPT_PARAMETERS,
    salt: randomBytes(SALT_BYTES).toString("base64"),
    hash: randomBytes(KEY_BYTES).toString("base64"),
  };
}

/** Whether `value` is a stored {@link PasswordHash} with parameters this server will run. */
export function isPasswordHash(value: unknown): value is PasswordHash {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.salt === "string" &&
    typeof v.hash === "string" &&
    Number.isSafeInteger(v.N) &&
    Number.isSafeInteger(v.r) &&
    Number.isSafeInteger(v.p) &&
    (v.N as number) >= 2 &&
    (v.N as number) <= MAX_N &&
    ((v.N as number) & ((v.N as number) - 1)) === 0 &&
    (v.r as number) >= 1 &&
    (v.r as number) <= MAX_R &&
    (v.p as number) >= 1 &&
    (v.p as number) <= MAX_P
  );
}

function derive(password: string, salt: Buffer, parameters: ScryptParameters): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; maxmem is set just above that (Node's default, 32 MiB, is
  // exactly what N = 2^15, r = 8 needs and would refuse it).
  const maxmem = 128 * parameters.N * parameters.r * parameters.p + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, { N: parameters.N, r: parameters.r, p: parameters.p, maxmem }, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}
