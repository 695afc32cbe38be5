import { createHash } from "node:crypto";
import type { RandomSource } from "../../src/index.js";

/**
 * A reproducible RandomSource: SHA-256 of a seed and a counter, so golden records come out the
 * same on every run. Never use outside tests.
 */
export function deterministicRandom(seed: string): RandomSource {
  let counter = 0;
  let block = Buffer.alloc(0);
  return {
    fill(target) {
      let written = 0;
      while (written < target.byteLength) {
        if (block.byteLength === 0) block = createHash("sha256").update(`${seed}:${counter++}`).digest();
        const take = Math.min(block.byteLength, target.byteLength - written);
        target.set(block.subarray(0, take), written);
        block = block.subarray(take);
        written += take;
      }
    },
  };
}

/**
 * A RandomSource that uses the system CSPRNG and remembers every buffer it filled, so a test
 * can check afterwards that the key buffers among them were wiped.
 */
export function recordingRandom(): RandomSource & { filled: Uint8Array[] } {
  const filled: Uint8Array[] = [];
  return {
    filled,
    fill(target) {
      globalThis.crypto.getRandomValues(target);
      filled.push(target);
    },
  };
}
