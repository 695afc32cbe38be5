// Spellings of one name in a request path, for the canonical-path matrix
// (e2e-canonical-matrix.test.ts). Each variant rewrites the name segment as raw bytes of the
// request target (already percent-encoded where needed: the target is sent as is, with
// rawHttp, so nothing between the test and the server normalises it).
//
// The expected canonical path is computed here independently of the server's code, from the
// rules the server promises: the target is percent-decoded exactly once (as UTF-8); a path
// with a control character, whitespace at either end of a segment, or an empty, "." or ".."
// segment (other than one trailing "/") is malformed.

/** One spelling of a name: `name` gives the raw name segment (may contain `/`), or null when the class does not apply to this name. */
export interface SpellingVariant {
  id: string;
  /** The raw (as sent) spelling of `name`, or null when the variant does not apply. */
  name(name: string): string | null;
  /** Append a `/` to the whole path (the trailing-slash class). */
  appendSlash?: boolean;
}

/** `%XX` for each UTF-8 byte of `text`, upper-case hex. */
export function percentEncodeAll(text: string): string {
  return [...Buffer.from(text, "utf8")].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`).join("");
}

/** The fullwidth form (U+FF01..U+FF5E) of each printable ASCII character of `text`. */
export function fullwidth(text: string): string {
  return [...text].map((c) => (c >= "!" && c <= "~" ? String.fromCodePoint(c.codePointAt(0)! - 0x21 + 0xff01) : c)).join("");
}

const mid = (name: string): number => Math.max(1, Math.floor(name.length / 2));
const insertMid = (name: string, raw: string): string => `${name.slice(0, mid(name))}${raw}${name.slice(mid(name))}`;

/** Every spelling class of the matrix. `baseline` is the canonical spelling itself. */
export const SPELLING_VARIANTS: readonly SpellingVariant[] = [
  { id: "baseline", name: (n) => n },
  // case
  { id: "upper-first", name: (n) => n[0]!.toUpperCase() + n.slice(1) },
  { id: "upper-one-mid", name: (n) => n.slice(0, mid(n)) + n[mid(n)]!.toUpperCase() + n.slice(mid(n) + 1) },
  { id: "upper-all", name: (n) => n.toUpperCase() },
  // whitespace (raw-encoded)
  { id: "space-leading", name: (n) => `%20${n}` },
  { id: "space-trailing", name: (n) => `${n}%20` },
  { id: "space-inside", name: (n) => insertMid(n, "%20") },
  { id: "nbsp-trailing", name: (n) => `${n}%C2%A0` },
  { id: "zwsp-trailing", name: (n) => `${n}%E2%80%8B` },
  { id: "ideographic-space-leading", name: (n) => `%E3%80%80${n}` },
  // control characters
  { id: "tab-leading", name: (n) => `%09${n}` },
  { id: "tab-trailing", name: (n) => `${n}%09` },
  { id: "tab-inside", name: (n) => insertMid(n, "%09") },
  { id: "lf-leading", name: (n) => `%0a${n}` },
  { id: "lf-trailing", name: (n) => `${n}%0A` },
  { id: "lf-inside", name: (n) => insertMid(n, "%0a") },
  { id: "cr-trailing", name: (n) => `${n}%0D` },
  { id: "nul-leading", name: (n) => `%00${n}` },
  { id: "nul-trailing", name: (n) => `${n}%00` },
  { id: "nul-inside", name: (n) => insertMid(n, "%00") },
  { id: "del-trailing", name: (n) => `${n}%7F` },
  { id: "c1-trailing", name: (n) => `${n}%C2%85` },
  // separators and dot segments before the name
  { id: "encoded-slash-before", name: (n) => `%2F${n}` },
  { id: "encoded-slash-before-lower", name: (n) => `%2f${n}` },
  { id: "double-slash-before", name: (n) => `/${n}` },
  { id: "dot-before", name: (n) => `./${n}` },
  { id: "encoded-dot-before", name: (n) => `%2E/${n}` },
  { id: "dotdot", name: (n) => `x/../${n}` },
  { id: "encoded-dotdot", name: (n) => `x/%2e%2E/${n}` },
  { id: "trailing-slash", name: (n) => n, appendSlash: true },
  // a sub-path below the name: another canonical path, which must not act on the name's resource
  { id: "sub-path", name: (n) => `${n}/x` },
  // percent-encoded letters (decode to the canonical name, or to a case change of it)
  { id: "pct-first-letter", name: (n) => percentEncodeAll(n[0]!) + n.slice(1) },
  { id: "pct-all-letters", name: (n) => percentEncodeAll(n) },
  { id: "pct-lower-hex", name: (n) => percentEncodeAll(n[0]!).toLowerCase() + n.slice(1) },
  { id: "pct-upper-letter", name: (n) => percentEncodeAll(n[0]!.toUpperCase()) + n.slice(1) },
  // look-alikes
  { id: "fullwidth", name: (n) => percentEncodeAll(fullwidth(n)) },
  { id: "fullwidth-first", name: (n) => percentEncodeAll(fullwidth(n[0]!)) + n.slice(1) },
  { id: "dotted-capital-i", name: (n) => (n.includes("i") ? n.replace("i", "%C4%B0") : null) },
  // double encoding (decoded once: the name keeps a literal "%")
  { id: "double-encoded-letter", name: (n) => `%25${percentEncodeAll(n[0]!).slice(1)}${n.slice(1)}` },
  { id: "double-encoded-slash-before", name: (n) => `%252F${n}` },
  // invalid UTF-8 (an overlong encoding of the first letter)
  {
    id: "overlong-utf8",
    name: (n) =>
      n.charCodeAt(0) < 0x80
        ? `%${(0xc0 | (n.charCodeAt(0) >> 6)).toString(16).toUpperCase()}%${(0x80 | (n.charCodeAt(0) & 0x3f)).toString(16).toUpperCase()}${n.slice(1)}`
        : null,
  },
];

/** Decodes `raw` exactly once as UTF-8; null when it is not valid percent-encoded UTF-8. */
export function decodeOnce(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

// Characters refused at either end of a segment: Unicode White_Space and the zero-width ones.
const EDGE = /^[\s\u0085\u200b-\u200d\u2060\ufeff]|[\s\u0085\u200b-\u200d\u2060\ufeff]$/u;
// C0 and C1 control characters and DEL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: detects control characters in path segments on purpose
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

/** Why the decoded Vault path `path` is malformed, or null when it is well formed. */
export function malformedReason(path: string): string | null {
  const segments = path.split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === "") {
      if (i === segments.length - 1 && i > 0) continue;
      return "empty segment";
    }
    if (segment === "." || segment === "..") return "dot segment";
    if (CONTROL.test(segment)) return "control character";
    if (EDGE.test(segment)) return "whitespace at a segment end";
  }
  return null;
}

/** Whether `text` contains something that looks like a percent-escape. */
export function hasPercentEscape(text: string): boolean {
  return /%[0-9A-Fa-f]{2}/.test(text);
}
