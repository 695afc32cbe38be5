import { createHmac, randomBytes } from "node:crypto";
import type { Transaction } from "@egide/storage-core";

/**
 * A method's HMAC key: 32 random bytes made when the method is enabled, stored at
 * `<method data>/hmac-key` through the barrier (so encrypted), deleted with the method. Secret
 * ids and role ids are stored only as HMAC-SHA256 under it: the database holds no value that
 * could be replayed, and without the key (behind the seal) a stolen database cannot be used to
 * test guesses.
 */
export const HMAC_KEY_NAME = "hmac-key";

/** Creates the key of a new method in `tx`. */
export async function createHmacKey(tx: Pick<Transaction, "put">, dataPrefix: string): Promise<void> {
  await tx.put(dataPrefix + HMAC_KEY_NAME, randomBytes(32));
}

/**
 * The key of a method whose data holds none: the method was disabled (by another instance,
 * since this one's cached table still named it) or its data is damaged. The router tells the
 * two apart.
 */
export class MissingHmacKeyError extends Error {
  constructor() {
    super("the auth method's HMAC key is missing");
    this.name = "MissingHmacKeyError";
  }
}

/** The method's key, read through `reader`; {@link MissingHmacKeyError} when it is missing. */
export async function readHmacKey(reader: Pick<Transaction, "get">, dataPrefix: string): Promise<Buffer> {
  const key = await reader.get(dataPrefix + HMAC_KEY_NAME);
  if (key === null || key.length < 32) throw new MissingHmacKeyError();
  return key;
}

/** HMAC-SHA256 of `value` under `key`, hex: the storage name of a secret id or role id. */
export function keyedHash(key: Buffer, value: string): string {
  return createHmac("sha256", key).update(value, "utf8").digest("hex");
}
