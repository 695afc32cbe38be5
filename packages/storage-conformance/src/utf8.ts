/** The UTF-8 bytes of `text`, as the values tests store. */
export function utf8(text: string): Buffer {
  return Buffer.from(text, "utf8");
}

/** The UTF-8 size of `text` in bytes, the unit of the key length limit. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * A printable form of a read value for assertions: `null` stays `null`, bytes become hex, so a
 * failing comparison shows the bytes instead of a Buffer dump.
 */
export function hexOrNull(value: Uint8Array | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex");
}
