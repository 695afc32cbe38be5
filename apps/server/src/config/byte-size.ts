import { ConfigError } from "@egide/storage-core";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/**
 * A size in bytes from a configuration value: an integer (bytes) or a string such as "64MiB",
 * "512 KB" or "1GiB" (decimal and binary units, case-insensitive); `undefined` gives
 * `fallback`. Anything else, or a size outside `min`..`max`, is a `ConfigError` naming `option`.
 */
export function byteSize(value: unknown, option: string, fallback: number, range: { min: number; max: number }): number {
  if (value === undefined) return fallback;
  const bytes = typeof value === "number" ? value : typeof value === "string" ? parseByteSize(value) : undefined;
  if (bytes === undefined || !Number.isSafeInteger(bytes)) {
    const message = `must be a size in bytes, as an integer or a string such as "64MiB", got ${JSON.stringify(value)}`;
    throw new ConfigError("INVALID_CONFIG", message, { option });
  }
  if (bytes < range.min || bytes > range.max) {
    throw new ConfigError("INVALID_CONFIG", `must be between ${range.min} and ${range.max} bytes, got ${bytes}`, { option });
  }
  return bytes;
}

/** "64MiB" → 67108864; undefined when the text is not a size. One pass, no regular expression. */
export function parseByteSize(text: string): number | undefined {
  if (text.length > 32) return undefined;
  let index = 0;
  while (index < text.length && text.charCodeAt(index) >= 48 && text.charCodeAt(index) <= 57) index += 1;
  if (index === 0) return undefined;
  const unit = UNITS[text.slice(index).trim().toLowerCase()];
  return unit === undefined ? undefined : Number(text.slice(0, index)) * unit;
}
