import { wrapStorage, wrapTransaction } from "@egide/storage-core";
import type {
  ChangeFeedSubscription,
  StorageBackend,
  StorageChange,
  Transaction,
  TransactionOptions,
  WrappedStorage,
} from "@egide/storage-core";
import { ByteBudgetLru } from "./byte-budget-lru.js";
import type { CacheCoherence } from "./cache-coherence.js";

/** What a {@link StorageCache} reports as it works (the metrics hook into it). */
export interface StorageCacheObserver {
  /** A read answered from the cache. */
  hit?(): void;
  /** A read that went to storage while the cache was usable. */
  miss?(): void;
  /** A read that went to storage because the cache was not usable (feed not live). */
  bypass?(): void;
  /** Entries dropped because their keys changed (`all`: a flush of everything). */
  invalidated?(count: number, all: boolean): void;
  /** A change arrived this many milliseconds after its commit. */
  lag?(ms: number): void;
  /** The feed became live or stopped being live. */
  live?(live: boolean): void;
}

/** Options of {@link StorageCache}. */
export interface StorageCacheOptions {
  /** The byte budget of the cached records. */
  maxBytes: number;
  /** No caching at all: every read goes to storage (`[cache] disable = true`). */
  disabled?: boolean;
  observer?: StorageCacheObserver;
}

/** What the cache tells health and metrics. */
export interface StorageCacheStatus {
  /** Whether the cache is configured on (`[cache] disable` is false). */
  enabled: boolean;
  /**
   * The storage's change feed: `live`, `not_live`, `absent` (the backend has none), or `unused`
   * (the cache is disabled, so nothing subscribes to it).
   */
  feed: "live" | "not_live" | "absent" | "unused";
  /** Whether reads are being answered from the cache now. */
  serving: boolean;
  entries: number;
  bytes: number;
  maxBytes: number;
}

/**
 * A coherent read-through cache of storage records, kept in front of a backend that has the
 * change feed, beneath the encrypting barrier: it only ever holds ciphertext (the records as
 * stored), never a decrypted value, within a byte budget (LRU).
 *
 * Coherence: an entry is dropped when the feed says its key changed, whoever changed it; when
 * the feed is not live, nothing is served or kept (reads go to storage) and, when it is live
 * again, everything held before is thrown away. A read that was on its way to storage when its
 * key was invalidated still answers its callers but is not kept, so a copy read before a commit
 * cannot outlive that commit's invalidation. Absent keys are not kept: a client sending made-up
 * tokens, unauthenticated, cannot fill the budget and push real records out. Writes through this cache invalidate their keys
 * before and after they commit. Transactions always read storage: check-and-set is decided in
 * the writing transaction, never against a cache.
 *
 * Without a feed on the backend (or with `disabled`) the cache is a pass-through and
 * {@link StorageCache.coherent} is false, so the decoded caches above it do not cache either.
 */
export class StorageCache implements CacheCoherence {
  /** The backend to read and write through (the barrier goes on top of it). */
  readonly storage: WrappedStorage;
  readonly #inner: StorageBackend;
  readonly #lru: ByteBudgetLru;
  readonly #enabled: boolean;
  readonly #observer: StorageCacheObserver;
  readonly #listeners = new Set<(keys: readonly string[] | null) => void>();
  readonly #subscription: ChangeFeedSubscription | undefined;
  /** Loads on their way to storage: a load is kept only while its token is still the key's. */
  readonly #pending = new Map<string, symbol>();
  /** Shared loads, so a burst of misses on one key costs one storage read. */
  readonly #inflight = new Map<string, Promise<Buffer | null>>();
  #live = false;

  constructor(inner: StorageBackend, options: StorageCacheOptions) {
    this.#inner = inner;
    this.#lru = new ByteBudgetLru(options.maxBytes);
    this.#enabled = options.disabled !== true;
    this.#observer = options.observer ?? {};
    if (this.#enabled && typeof inner.subscribeChanges === "function") {
      this.#subscription = inner.subscribeChanges({
        change: (change) => this.#changed(change),
        live: (live) => this.#liveChanged(live),
      });
    }
    this.storage = wrapStorage(inner, this.#overrides());
  }

  get coherent(): boolean {
    return this.#subscription !== undefined && this.#live;
  }

  onInvalidate(listener: (keys: readonly string[] | null) => void): () => void {
    const own = (keys: readonly string[] | null) => listener(keys);
    this.#listeners.add(own);
    return () => this.#listeners.delete(own);
  }

  status(): StorageCacheStatus {
    const hasFeed = typeof this.#inner.subscribeChanges === "function";
    return {
      enabled: this.#enabled,
      feed: !hasFeed ? "absent" : !this.#enabled ? "unused" : this.#live ? "live" : "not_live",
      serving: this.coherent,
      entries: this.#lru.size,
      bytes: this.#lru.bytes,
      maxBytes: this.#lru.maxBytes,
    };
  }

  /** Stops listening to the feed and drops every entry (the backend is closed by `storage.close()`). */
  stop(): void {
    this.#subscription?.close();
    this.#live = false;
    this.#flush();
  }

  #overrides() {
    const inner = this.#inner;
    return {
      get: (key: string) => this.#get(key),
      exists: (key: string) => {
        const held = this.coherent ? this.#lru.get(key) : undefined;
        if (held !== undefined) {
          this.#observer.hit?.();
          return Promise.resolve(held.value !== null);
        }
        return inner.exists(key);
      },
      getMany: (keys: readonly string[]) => this.#getMany(keys),
      put: (key: string, value: Uint8Array) => this.#writing([key], () => inner.put(key, value)),
      delete: (key: string) => this.#writing([key], () => inner.delete(key)),
      transaction: <T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T> => {
        const written = new Set<string>();
        return this.#writing(written, () =>
          inner.transaction((tx) => {
            // A retried attempt starts over: keys of a rolled-back attempt stay listed (harmless).
            return fn(this.#trackingTransaction(tx, written));
          }, options),
        );
      },
      close: () => {
        this.stop();
        return inner.close();
      },
    };
  }

  /** `tx` with every write recorded in `written` and invalidated at once. */
  #trackingTransaction(tx: Transaction, written: Set<string>): Transaction {
    const invalidate = (key: string) => {
      written.add(key);
      this.#invalidate(key);
    };
    // wrapTransaction forwards the rest, and keeps an optional member only when `tx` has it.
    return wrapTransaction(tx, {
      put: (key, value) => {
        invalidate(key);
        return tx.put(key, value);
      },
      delete: (key) => {
        invalidate(key);
        return tx.delete(key);
      },
      putMany: (entries) => {
        for (const entry of entries) invalidate(entry.key);
        return (tx.putMany as NonNullable<Transaction["putMany"]>).call(tx, entries);
      },
    });
  }

  /** Runs a write of `keys`, invalidating them before it starts and after it settles. */
  async #writing<T>(keys: Iterable<string>, write: () => Promise<T>): Promise<T> {
    for (const key of keys) this.#invalidate(key);
    try {
      return await write();
    } finally {
      for (const key of keys) this.#invalidate(key);
    }
  }

  #get(key: string): Promise<Buffer | null> {
    if (!this.coherent) {
      this.#observer.bypass?.();
      return this.#inner.get(key);
    }
    const held = this.#lru.get(key);
    if (held !== undefined) {
      this.#observer.hit?.();
      return Promise.resolve(held.value === null ? null : Buffer.from(held.value));
    }
    this.#observer.miss?.();
    let flight = this.#inflight.get(key);
    if (flight === undefined) {
      const token = Symbol(key);
      this.#pending.set(key, token);
      flight = this.#inner.get(key).then(
        (value) => {
          if (this.#pending.get(key) === token) {
            this.#pending.delete(key);
            this.#inflight.delete(key);
            if (this.coherent && value !== null) this.#lru.set(key, ownCopy(value));
          }
          return value;
        },
        (error: unknown) => {
          if (this.#pending.get(key) === token) {
            this.#pending.delete(key);
            this.#inflight.delete(key);
          }
          throw error;
        },
      );
      this.#inflight.set(key, flight);
    }
    // Each caller gets its own copy: the barrier above may zero what it was given.
    return flight.then((value) => (value === null ? null : Buffer.from(value)));
  }

  async #getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    const getMany = this.#inner.getMany?.bind(this.#inner);
    if (getMany === undefined) return Promise.all(keys.map((key) => this.#get(key)));
    if (!this.coherent) {
      this.#observer.bypass?.();
      return getMany(keys);
    }
    const answers: (Buffer | null | undefined)[] = keys.map((key) => {
      const held = this.#lru.get(key);
      return held === undefined ? undefined : held.value === null ? null : Buffer.from(held.value);
    });
    const missing = [...new Set(keys.filter((_, index) => answers[index] === undefined))];
    for (const answer of answers) if (answer !== undefined) this.#observer.hit?.();
    if (missing.length === 0) return answers as (Buffer | null)[];
    for (const _ of missing) this.#observer.miss?.();
    const tokens = missing.map((key) => {
      const token = Symbol(key);
      this.#pending.set(key, token);
      // A shared single-key load of the same key is no longer the one whose result is kept.
      this.#inflight.delete(key);
      return token;
    });
    let values: (Buffer | null)[];
    try {
      values = await getMany(missing);
    } catch (error) {
      missing.forEach((key, index) => {
        if (this.#pending.get(key) === tokens[index]) this.#pending.delete(key);
      });
      throw error;
    }
    const found = new Map<string, Buffer | null>();
    missing.forEach((key, index) => {
      const value = values[index] ?? null;
      found.set(key, value);
      // Kept only when no invalidation of the key came while the read was out.
      if (this.#pending.get(key) !== tokens[index]) return;
      this.#pending.delete(key);
      if (this.coherent && value !== null) this.#lru.set(key, ownCopy(value));
    });
    return keys.map((key, index) => {
      const answer = answers[index];
      if (answer !== undefined) return answer;
      const value = found.get(key) ?? null;
      return value === null ? null : Buffer.from(value);
    });
  }

  #invalidate(key: string): void {
    const held = this.#lru.delete(key);
    this.#pending.delete(key);
    this.#inflight.delete(key);
    if (held) this.#observer.invalidated?.(1, false);
  }

  #flush(): void {
    const count = this.#lru.size;
    this.#lru.clear();
    this.#pending.clear();
    this.#inflight.clear();
    this.#observer.invalidated?.(count, true);
  }

  #changed(change: StorageChange): void {
    this.#observer.lag?.(Math.max(0, Date.now() - change.committedAt));
    if (change.keys === null) this.#flush();
    else for (const key of change.keys) this.#invalidate(key);
    this.#tell(change.keys);
  }

  #liveChanged(live: boolean): void {
    this.#live = live;
    // Either way what is held may be stale: before going live changes may have been missed, and
    // while not live nothing is served.
    this.#flush();
    this.#observer.live?.(live);
    this.#tell(null);
  }

  #tell(keys: readonly string[] | null): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(keys);
      } catch {
        // A decoded cache's listener must not stop the others.
      }
    }
  }
}

/**
 * A copy of `value` in memory of its own. `Buffer.from` puts small copies in Node's shared 8 KiB
 * pool, where one kept slice keeps the whole slab alive: a cache of small records would hold many
 * times its byte budget.
 */
function ownCopy(value: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(value.length);
  value.copy(copy);
  return copy;
}
