// The checks every backend makes on what it is given: keys, prefixes, values and list pages.
import { InvalidKeyError, ValueTooLargeError } from "./storage-error.js";

/** The longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** The default largest value, in bytes (1 MiB). Backends take a `maxValueBytes` option. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejects control characters in keys on purpose
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
// With the `u` flag a surrogate pair is one code point, so this matches only lone halves,
// which UTF-8 cannot encode (Buffer.from would silently turn them into U+FFFD).
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Checks a key against the storage key rules and throws {@link InvalidKeyError} when it breaks
 * one: 1–1024 bytes of well-formed UTF-8, no control characters, no leading `/`, and no empty,
 * `.` or `..` segment. A bad key is rejected, never rewritten.
 */
export function validateKey(key: unknown, backend?: string): asserts key is string {
  const reason = keyProblem(key, false);
  if (reason !== null) throw new InvalidKeyError(String(key), reason, { backend });
}

/**
 * Checks a listing prefix: empty, or a key's beginning. Complete segments follow the key rules;
 * the last, partial segment may be anything a key segment may start with (`.` included), and a
 * trailing `/` is allowed.
 */
export function validatePrefix(prefix: unknown, backend?: string): asserts prefix is string {
  if (prefix === "") return;
  const reason = keyProblem(prefix, true);
  if (reason !== null) throw new InvalidKeyError(String(prefix), reason, { backend });
}

/** Checks a value's type and size; throws {@link ValueTooLargeError} past `maxBytes`. */
export function validateValue(value: unknown, maxBytes: number, backend?: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${backend ? `${backend}: ` : ""}value must be a Uint8Array or Buffer`);
  }
  if (value.byteLength > maxBytes) throw new ValueTooLargeError(value.byteLength, maxBytes, { backend });
}

// The common case, checked in one pass: printable ASCII (one byte a character, so the length
// is the byte length), with no empty, "." or ".." segment and no leading or trailing "/".
// Anything else takes the full check below; this only ever accepts what that accepts.
const PLAIN_KEY = /^[\x20-\x7e]+$/;
// An empty, "." or ".." segment: a leading, trailing or doubled "/", or a dot segment.
const BAD_SEGMENT = /(?:^|\/)\.{0,2}(?:\/|$)/;

function keyProblem(key: unknown, isPrefix: boolean): string | null {
  if (typeof key !== "string") return "must be a string";
  if (!isPrefix && key.length <= MAX_KEY_BYTES && PLAIN_KEY.test(key) && !BAD_SEGMENT.test(key)) return null;
  if (key.length === 0) return "must not be empty";
  if (LONE_SURROGATE.test(key)) return "must be well-formed UTF-8 (lone surrogate)";
  if (CONTROL.test(key)) return "must not contain control characters";
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) return `must be at most ${MAX_KEY_BYTES} bytes of UTF-8`;
  if (key.startsWith("/")) return "must not start with '/'";
  const segments = key.split("/");
  // A prefix's last segment is partial ("foo/." may list "foo/.hidden"), and may be empty
  // when the prefix ends with "/".
  const complete = isPrefix ? segments.slice(0, -1) : segments;
  for (const segment of complete) {
    if (segment === "") return "must not contain an empty segment ('//' or a trailing '/')";
    if (segment === "." || segment === "..") return `must not contain a '${segment}' segment`;
  }
  return null;
}

/**
 * Checks the arguments of `listPage`: a valid prefix, a string cursor and a whole-number limit.
 * The cursor is only compared, never stored, so it needs no key rules.
 */
export function validateListPage(prefix: unknown, after: unknown, limit: unknown, backend?: string): asserts prefix is string {
  validatePrefix(prefix, backend);
  if (typeof after !== "string") throw new TypeError(`${backend ? `${backend}: ` : ""}listPage: after must be a string`);
  if (typeof limit !== "number" || !Number.isInteger(limit)) {
    throw new TypeError(`${backend ? `${backend}: ` : ""}listPage: limit must be a whole number`);
  }
}
