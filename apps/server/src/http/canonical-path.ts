import { badRequest } from "./vault-error.js";
import type { VaultError } from "./vault-error.js";

/** The prefix of every API path. */
export const API_PREFIX = "/v1/";

/** A request target split into its canonical Vault path and its raw query. */
export interface CanonicalTarget {
  /**
   * The Vault path (after `/v1/`), decoded exactly once and checked: no control characters, no
   * whitespace at either end of a segment, no empty, `.` or `..` segment (a single trailing `/`
   * is kept: it is how list requests and folders are spelled).
   */
  path: string;
  /** The query string as sent (without `?`), or "" when there is none. */
  query: string;
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

// Characters that may not stand at either end of a segment: Unicode White_Space plus the
// invisible zero-width characters that make two names look alike.
const EDGE_INVISIBLE: ReadonlySet<number> = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009,
  0x200a, 0x200b, 0x200c, 0x200d, 0x2028, 0x2029, 0x202f, 0x205f, 0x2060, 0x3000, 0xfeff,
]);

/** Whether `code` is a C0 or C1 control character or DEL. */
function isControl(code: number): boolean {
  return code <= 0x1f || (code >= 0x7f && code <= 0x9f);
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/**
 * Decodes the percent-encoding of `raw` exactly once, as UTF-8. Only printable ASCII may appear
 * unencoded (the HTTP parser already refuses the rest); a `%` not followed by two hex digits,
 * or bytes that are not UTF-8, are refused. Linear in the input.
 */
function decodeOnce(raw: string): string | VaultError {
  const bytes = Buffer.allocUnsafe(raw.length);
  let length = 0;
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    if (code === 0x25) {
      const high = i + 2 < raw.length ? hexValue(raw.charCodeAt(i + 1)) : -1;
      const low = high >= 0 ? hexValue(raw.charCodeAt(i + 2)) : -1;
      if (low < 0) return badRequest("invalid request path: malformed percent-encoding");
      bytes[length++] = high * 16 + low;
      i += 2;
    } else if (code < 0x21 || code > 0x7e || code === 0x23) {
      return badRequest("invalid request path: characters outside printable ASCII must be percent-encoded");
    } else {
      bytes[length++] = code;
    }
  }
  try {
    return STRICT_UTF8.decode(bytes.subarray(0, length));
  } catch {
    return badRequest("invalid request path: the decoded path is not valid UTF-8");
  }
}

/**
 * Checks a decoded Vault path segment by segment (see {@link CanonicalTarget.path}); returns
 * the refusal, or undefined when it is canonical.
 */
export function checkCanonicalPath(path: string): VaultError | undefined {
  if (path === "") return undefined;
  const segments = path.split("/");
  // One trailing slash is part of the spelling ("secret/metadata/app/"); any other empty
  // segment ("//x", "a//b", "a//") is refused rather than collapsed.
  const last = segments.length - 1;
  for (let index = 0; index <= last; index++) {
    const segment = segments[index] as string;
    if (segment === "") {
      if (index === last && index > 0) continue;
      return badRequest("invalid request path: empty path segments are not allowed");
    }
    if (segment === "." || segment === "..") return badRequest(`invalid request path: "." and ".." segments are not allowed`);
    for (let i = 0; i < segment.length; i++) {
      if (isControl(segment.charCodeAt(i))) return badRequest("invalid request path: control characters are not allowed");
    }
    const first = segment.codePointAt(0) as number;
    const end = segment.codePointAt(segment.length - 1) as number;
    if (EDGE_INVISIBLE.has(first) || EDGE_INVISIBLE.has(end)) {
      return badRequest("invalid request path: a path segment may not start or end with whitespace");
    }
  }
  return undefined;
}

/**
 * The canonical form of a request target under `/v1/` (see {@link CanonicalTarget}), or the
 * 400 that refuses it. `undefined` for a target outside the API (no `/v1/` prefix). Every
 * step is one pass over the input: no regular expression sees it.
 */
export function canonicalTarget(url: string): CanonicalTarget | VaultError | undefined {
  const question = url.indexOf("?");
  const rawPath = question < 0 ? url : url.slice(0, question);
  const query = question < 0 ? "" : url.slice(question + 1);
  if (!rawPath.startsWith(API_PREFIX)) return undefined;
  const decoded = decodeOnce(rawPath.slice(API_PREFIX.length));
  if (typeof decoded !== "string") return decoded;
  const refused = checkCanonicalPath(decoded);
  return refused ?? { path: decoded, query };
}

/**
 * The URL Fastify routes on for a canonical target: each segment percent-encoded again, so
 * that routing sees the same segments the check saw (a decoded `/` stays a separator, since
 * the path was checked after decoding).
 */
export function routingUrl(target: CanonicalTarget): string {
  const path = target.path === "" ? "" : target.path.split("/").map(encodeURIComponent).join("/");
  return `${API_PREFIX}${path}${target.query === "" ? "" : `?${target.query}`}`;
}
