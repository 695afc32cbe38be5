/**
 * Vault's `strutil.GlobbedStringsMatch`: whether `value` matches `pattern`, where `pattern` may
 * start and/or end with the wildcard `*` (matching any run of characters, possibly empty). A `*`
 * anywhere else is a literal character, and so is a pattern of a single character (a lone `*`
 * matches only the string `*`; `**` matches everything).
 *
 * Linear in the lengths of the two strings: a prefix, a suffix or a substring test, never a
 * regular expression.
 */
export function globbedStringsMatch(pattern: string, value: string): boolean {
  // Go compares byte lengths; a pattern of fewer than 2 bytes is either empty or one ASCII
  // character (any other character is at least 2 bytes), which a UTF-16 length of 0 or 1 also
  // covers for those cases, and for a single other character both sides compare for equality.
  if (pattern.length < 2) return value === pattern;
  const leading = pattern.startsWith("*");
  const trailing = pattern.endsWith("*");
  if (leading && trailing) return value.includes(pattern.slice(1, -1));
  if (leading) return value.endsWith(pattern.slice(1));
  if (trailing) return value.startsWith(pattern.slice(0, -1));
  return value === pattern;
}
