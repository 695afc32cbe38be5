/**
 * The values of `rows` in the order of `keys` (`null` for a key without a row). A key given
 * twice gets a copy the second time, so that no two entries share one Buffer.
 */
export function inKeyOrder(keys: readonly string[], rows: readonly { key: string; value: Buffer }[]): (Buffer | null)[] {
  const found = new Map(rows.map((row) => [row.key, row.value]));
  const handed = new Set<string>();
  return keys.map((key) => {
    const value = found.get(key);
    if (value === undefined) return null;
    if (handed.has(key)) return Buffer.from(value);
    handed.add(key);
    return value;
  });
}
