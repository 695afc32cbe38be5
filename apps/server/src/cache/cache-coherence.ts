/**
 * What a cache of decoded storage records (the mount tables, compiled policies) needs to stay
 * coherent with the storage shared by every server instance: whether caching is allowed right
 * now, and a signal for every key that changed. {@link StorageCache} provides it from the
 * storage change feed.
 */
export interface CacheCoherence {
  /**
   * True while cached copies may be served: the cache is enabled and the change feed is live.
   * When false every read must go to storage (and nothing read may be kept).
   */
  readonly coherent: boolean;
  /**
   * Registers `listener` for invalidations: the keys that changed, or `null` when anything may
   * have changed (the feed went live or stopped being live, or a change could not be described).
   * Called synchronously; returns the function that unregisters it.
   */
  onInvalidate(listener: (keys: readonly string[] | null) => void): () => void;
}
