/**
 * Most keys one published change names. A transaction that writes more (a restore, a
 * migration) is published with `keys: null`, "anything may have changed", which the change
 * feed allows for a transaction too large to describe: it keeps the transaction's memory and
 * every subscriber's work bounded.
 */
export const MAX_CHANGE_KEYS = 10_000;

/**
 * The keys a read-write transaction put or deleted, each once, in the order first written: what
 * the change feed publishes once the transaction has committed.
 */
export class ChangedKeys {
  #keys: Set<string> | null = new Set();
  #written = false;

  /** Records a put or delete of `key` that has run. */
  add(key: string): void {
    this.#written = true;
    if (this.#keys === null) return;
    this.#keys.add(key);
    if (this.#keys.size > MAX_CHANGE_KEYS) this.#keys = null;
  }

  /** Whether any key was put or deleted. */
  get written(): boolean {
    return this.#written;
  }

  /** The keys, each once; `null` past {@link MAX_CHANGE_KEYS}. */
  get keys(): readonly string[] | null {
    return this.#keys === null ? null : [...this.#keys];
  }
}
