import { badRequest } from "../http/vault-error.js";
import { isJsonObject, jsonKind } from "./kv-input.js";

/** Vault's limits on `custom_metadata`. */
export const MAX_CUSTOM_METADATA_KEYS = 64;
export const MAX_CUSTOM_METADATA_KEY_BYTES = 128;
export const MAX_CUSTOM_METADATA_VALUE_BYTES = 512;

const PREFIX = "custom_metadata validation failed";
// Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u;

/**
 * Reads a `custom_metadata` map the way Vault does (values weakly converted to strings:
 * numbers as written, booleans as "1"/"0", null as ""). With `dropNulls` (a patch), null
 * members are left out instead: they mean "remove this key".
 */
export function parseCustomMetadata(value: unknown, dropNulls = false): Record<string, string> {
  if (!isJsonObject(value)) throw badRequest(`${PREFIX}: expected a map of strings, got ${jsonKind(value)}`);
  const entries: Array<[string, string]> = [];
  for (const [key, item] of Object.entries(value)) {
    if (item === null) {
      if (!dropNulls) entries.push([key, ""]);
      continue;
    }
    if (typeof item === "string") entries.push([key, item]);
    else if (typeof item === "number" && Number.isFinite(item)) entries.push([key, String(item)]);
    else if (typeof item === "boolean") entries.push([key, item ? "1" : "0"]);
    else throw badRequest(`${PREFIX}: the value for key ${JSON.stringify(key)} is not a string`);
  }
  return Object.fromEntries(entries);
}

/**
 * Checks Vault's limits: at most 64 keys, keys of 1–128 bytes and values of 1–512 bytes, all
 * printable. Every problem is reported (as Go's multierror prints them), with a 400.
 */
export function validateCustomMetadata(metadata: Record<string, string>): void {
  const keys = Object.keys(metadata);
  const errors: string[] = [];
  if (keys.length > MAX_CUSTOM_METADATA_KEYS) {
    errors.push(`${PREFIX}: payload must contain at most ${MAX_CUSTOM_METADATA_KEYS} keys, provided ${keys.length}`);
  } else {
    for (const key of keys) {
      const value = metadata[key] as string;
      const keyBytes = Buffer.byteLength(key, "utf8");
      const valueBytes = Buffer.byteLength(value, "utf8");
      if (keyBytes === 0 || keyBytes > MAX_CUSTOM_METADATA_KEY_BYTES) {
        errors.push(
          `${PREFIX}: length of key ${JSON.stringify(key)} is ${keyBytes} but must be 0 < len(key) <= ${MAX_CUSTOM_METADATA_KEY_BYTES}`,
        );
      }
      if (valueBytes === 0 || valueBytes > MAX_CUSTOM_METADATA_VALUE_BYTES) {
        errors.push(
          `${PREFIX}: length of value for key ${JSON.stringify(key)} is ${valueBytes} but must be 0 < len(value) <= ${MAX_CUSTOM_METADATA_VALUE_BYTES}`,
        );
      }
      if (!PRINTABLE.test(key)) errors.push(`${PREFIX}: key ${JSON.stringify(key)} contains unprintable characters`);
      if (!PRINTABLE.test(value)) errors.push(`${PREFIX}: value for key ${JSON.stringify(key)} contains unprintable characters`);
    }
  }
  if (errors.length > 0) throw badRequest(multiError(errors));
}

/** Messages the way Go's `hashicorp/go-multierror` prints them. */
export function multiError(errors: string[]): string {
  const head = errors.length === 1 ? "1 error occurred:" : `${errors.length} errors occurred:`;
  return `${head}\n${errors.map((error) => `\t* ${error}`).join("\n")}\n\n`;
}
