import { assertAssignablePolicies } from "../auth/non-assignable-policies.js";
import { parseDuration } from "@egide/storage-core";
import { badRequest } from "../http/vault-error.js";
import { canonicalPolicyName } from "../policy/policy.js";

/** The longest role name or username accepted (checked before anything is hashed or stored). */
export const MAX_NAME_LENGTH = 128;

/** The longest secret (password, secret id, role id) accepted, in UTF-8 bytes. */
export const MAX_SECRET_BYTES = 1024;

/** The longest TTL accepted anywhere (100 years, in seconds): beyond it a number is a mistake. */
const MAX_SECONDS = 100 * 365 * 24 * 3600;

/**
 * A duration field as Vault's `TypeDurationSecond` reads it: a non-negative number of seconds,
 * its decimal spelling, or a duration such as `"1h30m"`. Absent, null or "" is 0.
 */
export function parseSeconds(value: unknown, name: string): number {
  if (value === undefined || value === null || value === "") return 0;
  let seconds: number;
  if (typeof value === "number") {
    seconds = value;
  } else if (typeof value === "string" && value.length <= 64) {
    if (/^\d+$/.test(value)) seconds = Number(value);
    else {
      try {
        seconds = Math.floor(parseDuration(value, name) / 1000);
      } catch {
        throw badRequest(`${name} must be a duration such as "1h" or a number of seconds`);
      }
    }
  } else {
    throw badRequest(`${name} must be a duration such as "1h" or a number of seconds`);
  }
  if (!Number.isSafeInteger(seconds) || seconds < 0) throw badRequest(`${name} must be a non-negative whole number of seconds`);
  if (seconds > MAX_SECONDS) throw badRequest(`${name} is longer than 100 years`);
  return seconds;
}

/**
 * A role name or username as Vault's `GenericNameRegex` allows it: letters, digits, `_`, `-`,
 * `.` (and `@` where `at` is true), starting and ending with a letter, digit or `_`, at most
 * {@link MAX_NAME_LENGTH} characters. Checked character by character (no regular expression
 * sees the input). Returns whether `name` is one.
 */
export function isValidName(name: string, at = false): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    const word = (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x5f;
    if (word) continue;
    const inner = code === 0x2d || code === 0x2e || (at && code === 0x40);
    if (!inner || i === 0 || i === name.length - 1) return false;
  }
  return true;
}

/** A string field bounded to `maxBytes` of UTF-8; the value is never repeated in the error. */
export function boundedString(value: unknown, name: string, maxBytes: number): string {
  if (typeof value !== "string") throw badRequest(`${name} must be a string`);
  if (value.length > maxBytes || Buffer.byteLength(value, "utf8") > maxBytes) throw badRequest(`${name} is longer than ${maxBytes} bytes`);
  return value;
}

/**
 * Policy names, as a list or a comma-separated string, each in its canonical form; sorted and
 * without duplicates. `root` is refused: an auth method never issues root tokens (Vault refuses
 * them at login; here they are refused when the setting is written).
 */
export function parsePolicyList(value: unknown, name: string): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === "string" ? value.split(",").filter((part) => part.trim() !== "") : value;
  if (!Array.isArray(list) || !list.every((item) => typeof item === "string")) throw badRequest(`${name} must be a list of strings`);
  if (list.length > 256) throw badRequest(`${name} holds more than 256 policies`);
  const names = [...new Set(list.map((item: string) => canonicalPolicyName(item.trim())))].sort();
  if (names.includes("root")) throw badRequest(`${name} cannot contain "root": auth methods do not issue root tokens`);
  assertAssignablePolicies(names);
  return names;
}

/**
 * Token metadata given as an object of strings or (as Vault's `metadata` of a secret id) a
 * JSON-encoded one; bounded like token metadata.
 */
export function parseStringMap(value: unknown, name: string): Record<string, string> {
  if (value === undefined || value === null || value === "") return {};
  let object: unknown = value;
  if (typeof value === "string") {
    if (value.length > 64 * 1024) throw badRequest(`${name} is too large`);
    try {
      object = JSON.parse(value);
    } catch {
      throw badRequest(`failed to parse ${name}: it must be a JSON object of strings`);
    }
  }
  if (typeof object !== "object" || object === null || Array.isArray(object)) throw badRequest(`${name} must be an object of strings`);
  const entries = Object.entries(object as Record<string, unknown>);
  if (entries.length > 64) throw badRequest(`${name} holds more than 64 keys`);
  const result: Record<string, string> = {};
  for (const [key, text] of entries) {
    if (typeof text !== "string") throw badRequest(`${name} must be an object of strings`);
    if (key.length > 128 || text.length > 1024) throw badRequest(`${name}: keys are at most 128 characters and values at most 1024`);
    result[key] = text;
  }
  return result;
}
