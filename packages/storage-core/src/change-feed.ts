/**
 * The storage change feed: an optional capability of a backend ({@link StorageBackend.subscribeChanges})
 * through which every instance sharing one storage learns which keys the others changed, so that it
 * can keep caches coherent without reading storage on every request.
 *
 * The feed carries keys only, never values. It is a signal, not a log: a change missed while the
 * feed was not live is gone, so a consumer treats every `live(false)` as "anything may have
 * changed" and, on the next `live(true)`, throws away whatever it derived from storage before.
 */

/** One committed change: the keys one transaction (or one single-key write) put or deleted. */
export interface StorageChange {
  /**
   * Where the change stands in the feed: it increases with every change a backend object
   * delivers, in the order it delivers them. Positions are local to the backend object (two
   * processes number the same commit differently); they order changes and measure gaps, they
   * are not a resume token.
   */
  readonly position: number;
  /**
   * The keys written or deleted, each once. `null` means "unknown": the backend saw that a
   * commit happened but not what it touched (a commit by another process on a SQLite file, a
   * transaction too large to describe), and a consumer must assume every key changed.
   */
  readonly keys: readonly string[] | null;
  /**
   * When the writer committed, in milliseconds since the epoch on the writer's clock: the
   * consumer's feed lag is its own clock minus this (meaningful while clocks agree).
   */
  readonly committedAt: number;
}

/** What a subscriber of the change feed is told. Both members are called synchronously; they must not throw. */
export interface ChangeFeedListener {
  /**
   * A committed change. Changes committed elsewhere arrive in commit order. A change committed
   * through this very backend object is delivered before the write (or transaction) that made
   * it resolves, so the writer's next read never races its own invalidation.
   */
  change(change: StorageChange): void;
  /**
   * The feed became live (`true`): from now on every committed change is delivered. Or it
   * stopped being live (`false`): changes may be missed until the next `live(true)`. A new
   * subscription starts not live; it is told `live(true)` once the feed is established (which
   * may happen before `subscribeChanges` returns).
   */
  live(live: boolean): void;
}

/** A subscription to the change feed. */
export interface ChangeFeedSubscription {
  /** Whether the feed is live right now (see {@link ChangeFeedListener.live}). */
  readonly live: boolean;
  /** Stops deliveries to this subscriber. Idempotent. */
  close(): void;
}
