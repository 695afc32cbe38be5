/**
 * Compares two keys in UTF-8 byte order, the order every backend lists in.
 *
 * JavaScript's `<` compares UTF-16 code units, which puts astral characters (U+10000 and up,
 * stored as surrogates D800–DFFF) before U+E000–U+FFFF. UTF-8 byte order equals code point
 * order, so we compare code points.
 */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Both below the surrogate range, or both at/after it: code unit order is code point order.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs === ys) return x < y ? -1 : 1;
    // Exactly one is a surrogate, i.e. part of an astral code point, which sorts after every
    // BMP code point.
    return xs ? 1 : -1;
  }
  return a.length - b.length;
}

/**
 * The smallest string greater than every string that starts with `prefix`, in UTF-8 byte order;
 * `null` when there is none (empty prefix, or one made only of U+10FFFF).
 *
 * Prefix queries are the range `key >= prefix AND key < prefixSuccessor(prefix)`, so `%`, `_`
 * and `\` in keys are ordinary characters and the primary-key index serves the query.
 */
export function prefixSuccessor(prefix: string): string | null {
  const codePoints = Array.from(prefix, (ch) => ch.codePointAt(0) as number);
  while (codePoints.length > 0) {
    const last = codePoints.pop() as number;
    if (last < 0x10ffff) {
      // Skip the surrogate block: it holds no characters.
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      codePoints.push(next);
      return String.fromCodePoint(...codePoints);
    }
  }
  return null;
}
