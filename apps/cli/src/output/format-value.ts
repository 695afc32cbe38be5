/**
 * A JSON value as a table cell, the way Vault's CLI shows them: strings as they are, `null` as
 * `n/a`, lists of scalars as `[a b]`, other objects as compact JSON.
 */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "n/a";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value) && value.every((item) => item === null || ["string", "number", "boolean"].includes(typeof item))) {
    return `[${value.map((item) => formatValue(item)).join(" ")}]`;
  }
  return JSON.stringify(value);
}
