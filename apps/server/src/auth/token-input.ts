import { parseDuration } from "@egide/storage-core";
import { badRequest } from "../http/vault-error.js";
import { parseBoolean } from "../kv/kv-input.js";
import { canonicalPolicyName } from "../policy/policy.js";

/**
 * A duration field as Vault's `parseutil.ParseDurationSecond` reads it: a number of seconds
 * (number or numeric string) or a Go-style duration ("1h", "90m"). Returns milliseconds.
 */
export function durationMs(value: unknown, name: string): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value * 1000;
  if (typeof value === "string" && value.length <= 64) {
    try {
      return /^\d{1,12}$/.test(value) ? Number(value) * 1000 : parseDuration(value, name);
    } catch {
      // answered below
    }
  }
  throw badRequest(`${name} must be a duration such as "1h" or a number of seconds`);
}

/** A duration field in whole seconds (Vault's `TypeDurationSecond`). */
export function durationSeconds(value: unknown, name: string): number {
  return Math.floor(durationMs(value, name) / 1000);
}

/** An optional duration: absent, null or "" is 0. */
export function optionalDurationMs(value: unknown, name: string): number {
  return value === undefined || value === null || value === "" ? 0 : durationMs(value, name);
}

/**
 * A list of names as a JSON list or a comma-separated string (Vault's `TypeCommaStringSlice`),
 * trimmed, empty ones dropped; canonical policy names when `policies` is set (lower case; a name
 * that is not a valid policy name is refused, never trimmed into one).
 */
export function policyNames(value: unknown, name: string, policies: boolean): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === "string" ? value.split(",") : value;
  if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) throw badRequest(`${name} must be a list of strings`);
  const names = (list as string[]).map((v) => v.trim()).filter((v) => v !== "");
  return policies ? names.map((v) => canonicalPolicyName(v)) : names;
}

/** A boolean field as Vault's `TypeBool` reads it ("false" is false, not ignored); absent is `fallback`. */
export function flag(body: Record<string, unknown>, name: string, fallback = false): boolean {
  return body[name] === undefined || body[name] === null ? fallback : parseBoolean(body[name], name);
}

/** A required string field (`token`, `accessor`), with Vault's message when it is missing. */
export function requiredString(body: Record<string, unknown>, name: string, missing: string): string {
  const value = body[name];
  if (value === undefined || value === null || value === "") throw badRequest(missing);
  if (typeof value !== "string") throw badRequest(`${name} must be a string`);
  return value;
}

/** The longest `display_name` accepted: it goes into every audit row of the token. */
export const MAX_DISPLAY_NAME_LENGTH = 128;
/** Bounds of a token's `meta`, stored with the token and read on every request it makes. */
export const MAX_META_KEYS = 64;
export const MAX_META_KEY_LENGTH = 128;
export const MAX_META_VALUE_LENGTH = 1024;

/**
 * The display name as stored: "token-<name>", the name bounded (a 400 past the bound, never
 * truncated silently) and free of control characters.
 */
export function tokenDisplayName(value: unknown): string {
  if (value === undefined || value === null || value === "") return "token";
  if (typeof value !== "string") throw badRequest("display_name must be a string");
  if (value.length > MAX_DISPLAY_NAME_LENGTH) throw badRequest(`display_name is longer than ${MAX_DISPLAY_NAME_LENGTH} characters`);
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) throw badRequest("display_name must not contain control characters");
  }
  return `token-${value}`;
}

/** A token's `meta`: an object of strings, bounded. */
export function tokenMeta(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw badRequest("meta must be an object of strings");
  }
  const entries = Object.entries(value as Record<string, string>);
  if (entries.length > MAX_META_KEYS) throw badRequest(`meta holds more than ${MAX_META_KEYS} keys`);
  for (const [key, text] of entries) {
    if (key.length > MAX_META_KEY_LENGTH) throw badRequest(`meta keys are at most ${MAX_META_KEY_LENGTH} characters`);
    if (text.length > MAX_META_VALUE_LENGTH) throw badRequest(`meta values are at most ${MAX_META_VALUE_LENGTH} characters`);
  }
  return Object.fromEntries(entries);
}
