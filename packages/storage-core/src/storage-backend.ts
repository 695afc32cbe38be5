import type { ChangeFeedListener, ChangeFeedSubscription } from "./change-feed.js";

/** One entry of a subtree scan. */
export interface ScanEntry {
  /** The full key. */
  key: string;
  /** The stored value. */
  value: Buffer;
}

/** The outcome of a health probe. */
export interface HealthStatus {
  status: "healthy" | "unhealthy";
  /** How long the probe took, in milliseconds (fractional). */
  latencyMs: number;
  /** Why the backend is unhealthy; never holds a secret. */
  error?: string;
}

/** Options of {@link StorageBackend.transaction}. */
export interface TransactionOptions {
  /** A read-only transaction rejects every write with `READ_ONLY`. */
  readOnly?: boolean;
}

/**
 * The operations available inside a transaction. Reads see the transaction's own writes;
 * nothing outside sees them before commit. Using a transaction after its callback settled
 * fails with `CLOSED`.
 */
export interface Transaction {
  /** The value at `key`, or `null` when absent. */
  get(key: string): Promise<Buffer | null>;
  /** Inserts or overwrites `key`. */
  put(key: string, value: Uint8Array): Promise<void>;
  /** Removes `key`; an absent key is not an error, and children are not touched. */
  delete(key: string): Promise<void>;
  /** Whether `key` holds a value. */
  exists(key: string): Promise<boolean>;
  /** The direct children of `prefix` (see {@link StorageBackend.list}). */
  list(prefix: string): Promise<string[]>;
  /** A page of {@link Transaction.list} (see {@link StorageBackend.listPage}). */
  listPage(prefix: string, after: string, limit: number): Promise<string[]>;
  /**
   * Optional: puts every entry, as `put` would one by one (a key given twice keeps its last
   * value), in as few round trips as the backend can. Bulk loads (restore, migrate) use it
   * through {@link putEntries}; a backend without it is still correct, only slower.
   */
  putMany?(entries: readonly ScanEntry[]): Promise<void>;
  /**
   * Optional: the values at `keys`, in the same order (`null` for an absent key), read in as few
   * round trips as the backend can and seeing the transaction's own writes. Callers go through
   * {@link getValues}, which falls back to `get` one by one.
   */
  getMany?(keys: readonly string[]): Promise<(Buffer | null)[]>;
}

/**
 * The storage contract every backend implements, and every decorator (encryption barrier,
 * metrics) implements again around another backend.
 *
 * Keys follow the rules of `validateKey`; values are opaque bytes up to the backend's maximum.
 * Errors are `StorageError`s with a code.
 */
export interface StorageBackend {
  /** The backend's type as configured: "sqlite", "postgresql", … */
  readonly type: string;

  /** The value at `key`, or `null` when absent. */
  get(key: string): Promise<Buffer | null>;

  /** Inserts or overwrites `key`. Resolves once the write is durable. */
  put(key: string, value: Uint8Array): Promise<void>;

  /** Removes `key`; an absent key is not an error, and children are not touched. */
  delete(key: string): Promise<void>;

  /** Whether `key` holds a value. */
  exists(key: string): Promise<boolean>;

  /**
   * The direct children of `prefix`, relative to it, in UTF-8 byte order (Vault's list).
   * A child with descendants appears once with a trailing `/`; a key and a folder of the same
   * name both appear (`["bar", "bar/"]`); folders without keys vanish. Costs O(children).
   */
  list(prefix: string): Promise<string[]>;

  /**
   * `list(prefix)` restricted to entries strictly after `after` (in byte order), at most
   * `limit` of them; `limit <= 0` means no limit. An empty `after` starts at the beginning.
   */
  listPage(prefix: string, after: string, limit: number): Promise<string[]>;

  /**
   * Every key that starts with `prefix` (the whole subtree) with its value, in key order, as
   * one consistent snapshot: a transaction is seen whole or not at all. Backends read it in
   * pages where they can; end the loop (or `break`) so the snapshot is released.
   */
  scan(prefix: string): AsyncIterable<ScanEntry>;

  /**
   * Runs `fn` in a transaction: it commits when `fn` resolves and rolls back when it throws.
   * Serialization conflicts are retried a bounded number of times (so `fn` may run more than
   * once), then surface as `CONFLICT`.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>;

  /** A time-boxed probe of the backend. Never throws. */
  health(): Promise<HealthStatus>;

  /** Releases connections. Later calls fail with `CLOSED`. Idempotent. */
  close(): Promise<void>;

  /**
   * Optional: the values at `keys`, in the same order (`null` for an absent key), as one
   * consistent read in as few round trips as the backend can (one statement on PostgreSQL).
   * Callers go through {@link getValues}, which falls back to `get` one by one.
   */
  getMany?(keys: readonly string[]): Promise<(Buffer | null)[]>;

  /**
   * Optional: the change feed (see `change-feed.ts`). Subscribes `listener` to the keys of
   * committed changes, made through any backend object on the same storage. A backend offers
   * it only when it can tell, for every commit, that it happened.
   */
  subscribeChanges?(listener: ChangeFeedListener): ChangeFeedSubscription;
}
