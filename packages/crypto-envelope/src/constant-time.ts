import { timingSafeEqual } from "node:crypto";

/**
 * Whether `a` and `b` hold the same bytes, in time that depends only on their lengths (which
 * are public here: share and key sizes are fixed by the format).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return timingSafeEqual(a, b);
}
