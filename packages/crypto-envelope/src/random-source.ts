import { randomFillSync } from "node:crypto";

/**
 * Where nonces, DEKs and keys come from. Production code uses {@link systemRandom}; tests
 * inject a deterministic source to produce golden records, or a recording one to check that
 * key buffers are wiped.
 */
export interface RandomSource {
  /** Fills `target` with random bytes, in place. */
  fill(target: Uint8Array): void;
}

// 4 KiB of CSPRNG output per system call: a put needs 56 random bytes (a DEK and two nonces),
// so one refill serves about 70 writes. Consumed bytes are zeroed as they are handed out, so
// the pool never holds a copy of a key it already produced.
const POOL_BYTES = 4096;

class PooledRandomSource implements RandomSource {
  readonly #pool = Buffer.alloc(POOL_BYTES);
  #offset = POOL_BYTES;

  fill(target: Uint8Array): void {
    // Large requests skip the pool; they are rare (keys are 32 bytes).
    if (target.byteLength > POOL_BYTES / 4) {
      randomFillSync(target);
      return;
    }
    if (this.#offset + target.byteLength > POOL_BYTES) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const end = this.#offset + target.byteLength;
    target.set(this.#pool.subarray(this.#offset, end));
    this.#pool.fill(0, this.#offset, end);
    this.#offset = end;
  }
}

/** The process-wide CSPRNG source: `crypto.randomFillSync` behind a small pool. */
export const systemRandom: RandomSource = new PooledRandomSource();

/** `length` fresh random bytes from `source`. */
export function randomBytesFrom(source: RandomSource, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  source.fill(bytes);
  return bytes;
}
