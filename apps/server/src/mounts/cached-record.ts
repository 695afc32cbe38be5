import type { StorageBackend } from "@egide/storage-core";
import type { CacheCoherence } from "../cache/cache-coherence.js";

/** Options of {@link CachedRecord}. */
export interface CachedRecordOptions {
  /** How long a value read from storage is used before reading it again, ms. */
  cacheMs: number;
  /** The clock. */
  now: () => number;
  /**
   * The storage change feed's view (see {@link CacheCoherence}). Given, the copy is kept until
   * the feed says the key changed, instead of for `cacheMs`, and nothing is kept while the feed
   * is not live.
   */
  coherence?: CacheCoherence | undefined;
}

/**
 * One storage record, decoded, read through a cache: with a {@link CacheCoherence} (the
 * storage change feed), the copy is kept until its key changes and only while the feed is
 * live; without one, for at most `cacheMs`, so that a change another server instance makes on
 * the same storage is seen within that time. Either way a burst of reads costs one storage read. Concurrent reads share a single in-flight load. Local changes
 * call {@link invalidate} (again after their transaction commits): a load that started before
 * an invalidation is still answered to its callers but not cached, so a stale copy read during
 * a change cannot outlive it.
 */
export class CachedRecord<T> {
  readonly #storage: Pick<StorageBackend, "get">;
  readonly #key: string;
  readonly #decode: (raw: Buffer | null) => T;
  readonly #cacheMs: number;
  readonly #now: () => number;
  readonly #coherence: CacheCoherence | undefined;
  #cached: { value: T; at: number } | null = null;
  #loading: Promise<T> | null = null;
  /** Bumped by every invalidation: a read that started before one is not cached. */
  #generation = 0;

  constructor(storage: Pick<StorageBackend, "get">, key: string, decode: (raw: Buffer | null) => T, options: CachedRecordOptions) {
    this.#storage = storage;
    this.#key = key;
    this.#decode = decode;
    this.#cacheMs = options.cacheMs;
    this.#now = options.now;
    this.#coherence = options.coherence;
    this.#coherence?.onInvalidate((keys) => {
      if (keys === null || keys.includes(key)) this.invalidate();
    });
  }

  /** The decoded record: the cached copy while it is fresh, else one (shared) storage read. */
  async read(): Promise<T> {
    const coherence = this.#coherence;
    if (coherence !== undefined && !coherence.coherent) return this.#decode(await this.#storage.get(this.#key));
    const cached = this.#cached;
    if (cached !== null && (coherence !== undefined || this.#now() - cached.at < this.#cacheMs)) return cached.value;
    if (this.#loading === null) {
      const generation = this.#generation;
      const loading: Promise<T> = this.#storage.get(this.#key).then(
        (raw) => {
          const value = this.#decode(raw);
          if (generation === this.#generation && (coherence === undefined || coherence.coherent)) {
            this.#cached = { value, at: this.#now() };
          }
          if (this.#loading === loading) this.#loading = null;
          return value;
        },
        (error: unknown) => {
          if (this.#loading === loading) this.#loading = null;
          throw error;
        },
      );
      this.#loading = loading;
    }
    return this.#loading;
  }

  /** Forgets the cached copy: the next read goes to storage. */
  invalidate(): void {
    this.#generation += 1;
    this.#cached = null;
    this.#loading = null;
  }
}
