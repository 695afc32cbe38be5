/** Bytes charged per entry on top of its key and value: the map entry, the record object, the Buffer header. */
export const ENTRY_OVERHEAD_BYTES = 160;

interface LruEntry {
  /** The stored record, or `null` for a key known to be absent. */
  value: Buffer | null;
  bytes: number;
}

/**
 * A least-recently-used map of storage records with a budget in bytes: inserting past the
 * budget evicts the least recently used entries first. Each entry is charged its key (two
 * bytes per UTF-16 unit, as V8 may store it), its value and {@link ENTRY_OVERHEAD_BYTES}; an entry
 * larger than the whole budget is not kept. A `Map` keeps insertion order, so re-inserting on
 * every hit makes its first key the least recently used.
 */
export class ByteBudgetLru {
  readonly maxBytes: number;
  readonly #entries = new Map<string, LruEntry>();
  #bytes = 0;
  #evictions = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** The bytes charged to the entries held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The number of entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Entries evicted to stay within the budget since the start. */
  get evictions(): number {
    return this.#evictions;
  }

  /** The entry of `key` (marking it most recently used), or undefined when none is held. */
  get(key: string): { value: Buffer | null } | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry;
  }

  /** Whether an entry of `key` is held, without touching its recency. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Keeps `value` (a private copy the caller no longer touches) for `key`, evicting as needed. */
  set(key: string, value: Buffer | null): void {
    this.delete(key);
    const bytes = key.length * 2 + (value === null ? 0 : value.length) + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.maxBytes) return;
    this.#entries.set(key, { value, bytes });
    this.#bytes += bytes;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= entry.bytes;
      this.#evictions += 1;
    }
  }

  /** Drops the entry of `key`; true when there was one. */
  delete(key: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    return true;
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
