/** pg sends Buffers as bytea; a plain Uint8Array view is wrapped without copying. */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
