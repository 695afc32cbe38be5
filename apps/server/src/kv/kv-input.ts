import { badRequest } from "../http/vault-error.js";

/**
 * Request field parsing with the leniency of Vault's field types (`TypeInt`, `TypeBool`,
 * `TypeMap`, `TypeCommaIntSlice`, `TypeKVPairs`): JSON numbers or their string spellings,
 * `"true"`/`"1"` booleans, and so on. Invalid input is a 400 naming the field.
 */

/** A JSON object (not null, not an array). */
export type JsonObject = Record<string, unknown>;

/** Whether `value` is a JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The request body as an object: an absent body is `{}`, anything but an object is a 400. */
export function bodyObject(body: unknown): JsonObject {
  if (body === undefined || body === null || body === "") return {};
  if (!isJsonObject(body)) throw badRequest("the request body must be a JSON object");
  return body;
}

/** An own property of `object`, or undefined (never one of Object.prototype's). */
export function field(object: JsonObject, name: string): unknown {
  return Object.hasOwn(object, name) ? object[name] : undefined;
}

/** Whether `object` has the own property `name` (Vault's `GetOk`). */
export function hasField(object: JsonObject, name: string): boolean {
  return Object.hasOwn(object, name);
}

/** An integer the way `mapstructure.WeakDecode` reads one, or null when it cannot. */
export function weakInteger(value: unknown): number | null {
  if (value === null || value === undefined) return 0;
  if (typeof value === "number") return Number.isFinite(value) ? Math.trunc(value) : null;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "string") {
    const text = value.trim();
    if (text === "") return 0;
    if (!/^[-+]?\d+$/.test(text)) return null;
    const parsed = Number.parseInt(text, 10);
    return Number.isSafeInteger(parsed) ? parsed : null;
  }
  return null;
}

/** A `TypeInt` field: an integer, or a 400. */
export function parseInteger(value: unknown, name: string): number {
  const parsed = typeof value === "boolean" ? null : weakInteger(value);
  if (parsed === null) throw badRequest(`error converting input ${JSON.stringify(value)} for field "${name}": not an integer`);
  return parsed;
}

/** A `TypeInt` field that must not be negative (stored as an unsigned number by Vault). */
export function parseNonNegativeInteger(value: unknown, name: string): number {
  const parsed = parseInteger(value, name);
  if (parsed < 0) throw badRequest(`error converting input ${JSON.stringify(value)} for field "${name}": must not be negative`);
  return parsed;
}

/** A `TypeBool` field: a boolean or its string spelling (Go's `strconv.ParseBool`), or a 400. */
export function parseBoolean(value: unknown, name: string): boolean {
  if (typeof value === "boolean") return value;
  if (value === null) return false;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "string") {
    switch (value.trim()) {
      case "1":
      case "t":
      case "T":
      case "true":
      case "TRUE":
      case "True":
        return true;
      case "0":
      case "f":
      case "F":
      case "false":
      case "FALSE":
      case "False":
        return false;
      default:
        break;
    }
  }
  throw badRequest(`error converting input ${JSON.stringify(value)} for field "${name}": not a boolean`);
}

/**
 * A `TypeCommaIntSlice` field (`versions`): a JSON array of integers (or numeric strings), a
 * single integer, or a comma-separated string such as `"1,2,3"`. Absent means empty.
 */
export function parseVersionList(value: unknown, name = "versions"): number[] {
  if (value === undefined || value === null) return [];
  const invalid = () =>
    badRequest(`error converting input ${JSON.stringify(value)} for field "${name}": expected a list of version numbers`);
  const items: unknown[] = Array.isArray(value)
    ? value
    : typeof value === "string"
      ? value.split(",").filter((part) => part.trim() !== "")
      : [value];
  const versions: number[] = [];
  for (const item of items) {
    if (typeof item === "boolean" || Array.isArray(item) || isJsonObject(item)) throw invalid();
    const parsed = weakInteger(item);
    if (parsed === null) throw invalid();
    versions.push(parsed);
  }
  return versions;
}

/**
 * A `TypeMap` field: an object, or a 400 (null and absent are treated by the caller). The
 * message does not repeat the value: it may be secret data.
 */
export function parseMap(value: unknown, name: string): JsonObject {
  if (!isJsonObject(value)) throw badRequest(`error converting input for field "${name}": expected a map, got ${jsonKind(value)}`);
  return value;
}

/** What kind of JSON value `value` is, for error messages that must not echo it. */
export function jsonKind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "boolean":
      return "a boolean";
    case "object":
      return "an object";
    default:
      return typeof value;
  }
}
