import { createHash } from "node:crypto";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { KEY_BYTES } from "./aes-gcm.js";
import { checkShareScheme } from "./unseal-shares.js";
import type { ShareScheme } from "./unseal-shares.js";

/** The seal configuration format this version writes and reads. */
export const SEAL_CONFIG_FORMAT = 1;

/**
 * How the installation is sealed: stored in plaintext (it must be readable while sealed), and
 * bound into the root key record's associated data, so editing it makes unsealing fail rather
 * than change how many shares are needed.
 */
export interface SealConfig extends ShareScheme {
  format: typeof SEAL_CONFIG_FORMAT;
  type: "shamir";
  /** The install salt of every HKDF derivation (32 random bytes; not secret). */
  salt: Buffer;
  /** When the installation was initialised (ISO 8601). */
  createdAt: string;
}

/** The stored bytes of a seal configuration (JSON). */
export function serializeSealConfig(config: SealConfig): Buffer {
  return Buffer.from(
    JSON.stringify({
      format: config.format,
      type: config.type,
      shares: config.shares,
      threshold: config.threshold,
      salt: config.salt.toString("base64"),
      created_at: config.createdAt,
    }),
    "utf8",
  );
}

/** Parses stored seal configuration bytes; anything unexpected is `CORRUPT`. */
export function parseSealConfig(bytes: Uint8Array): SealConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (cause) {
    throw new StorageError(StorageErrorCode.CORRUPT, "seal configuration is not valid JSON", { cause });
  }
  const record = parsed as Record<string, unknown>;
  if (typeof parsed !== "object" || parsed === null || record.format !== SEAL_CONFIG_FORMAT || record.type !== "shamir") {
    throw new StorageError(StorageErrorCode.CORRUPT, "seal configuration has an unknown format or type");
  }
  const { shares, threshold, salt, created_at: createdAt } = record;
  const saltBytes = typeof salt === "string" ? Buffer.from(salt, "base64") : Buffer.alloc(0);
  if (typeof shares !== "number" || typeof threshold !== "number" || saltBytes.byteLength !== KEY_BYTES || typeof createdAt !== "string") {
    throw new StorageError(StorageErrorCode.CORRUPT, "seal configuration is missing or has malformed fields");
  }
  try {
    checkShareScheme({ shares, threshold });
  } catch (cause) {
    throw new StorageError(StorageErrorCode.CORRUPT, "seal configuration holds an impossible share scheme", { cause });
  }
  return { format: SEAL_CONFIG_FORMAT, type: "shamir", shares, threshold, salt: saltBytes, createdAt };
}

/** SHA-256 of the stored configuration bytes: the root key record's extra associated data. */
export function sealConfigDigest(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(bytes).digest();
}
