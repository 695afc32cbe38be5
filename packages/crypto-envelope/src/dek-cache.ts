import { createSecretKey } from "node:crypto";
import type { KeyObject } from "node:crypto";
import type { DekCache } from "./value-record.js";

/**
 * A bounded map of unwrapped DEKs (see {@link DekCache}), one per storage key, so reading a
 * value again costs one AES-GCM call instead of two. Oldest entries go first when it is full.
 * The seal manager empties it on seal() and whenever the keyring changes (a retired version
 * must stop being readable at once).
 */
export class BoundedDekCache implements DekCache {
  readonly #entries = new Map<string, { head: Buffer; dek: KeyObject }>();

  /** @param capacity the most DEKs held; 0 disables the cache. */
  constructor(readonly capacity: number) {}

  get(storageKey: string, head: Uint8Array): KeyObject | undefined {
    const entry = this.#entries.get(storageKey);
    // Record heads are ciphertext and public bytes, so an ordinary comparison is fine here.
    return entry !== undefined && entry.head.compare(head) === 0 ? entry.dek : undefined;
  }

  set(storageKey: string, head: Uint8Array, dek: Buffer): void {
    if (this.capacity === 0) return;
    if (this.#entries.size >= this.capacity && !this.#entries.has(storageKey)) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(storageKey, { head: Buffer.from(head), dek: createSecretKey(dek) });
  }

  /** How many DEKs are held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Drops every DEK. */
  clear(): void {
    this.#entries.clear();
  }
}
