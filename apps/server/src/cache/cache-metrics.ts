import { Counter, Gauge, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import type { StorageCache, StorageCacheObserver } from "./storage-cache.js";

/** Feed lag buckets in seconds: from 100 µs (a local commit) to 5 s (well past the 1 s promise). */
const LAG_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The cache's Prometheus metrics, registered in `registry`: hits, misses, bypasses (reads sent
 * to storage because the feed was not live), invalidations, feed lag, and whether the feed is
 * live, plus the cache's size. Returns the observer to give the {@link StorageCache}.
 */
export function cacheMetrics(registry: Registry): { observer: StorageCacheObserver; watch(cache: StorageCache): void } {
  const registers = [registry];
  const hits = new Counter({ name: "egide_cache_hits_total", help: "Storage reads answered from the cache.", registers });
  const misses = new Counter({ name: "egide_cache_misses_total", help: "Storage reads the cache sent to storage.", registers });
  const bypasses = new Counter({
    name: "egide_cache_bypassed_total",
    help: "Storage reads sent to storage because the change feed was not live (or the cache is disabled).",
    registers,
  });
  const invalidations = new Counter({
    name: "egide_cache_invalidations_total",
    help: "Cache entries dropped because their keys changed (kind=key) or in a flush of everything (kind=flush).",
    labelNames: ["kind"],
    registers,
  });
  const lag = new Histogram({
    name: "egide_cache_feed_lag_seconds",
    help: "Time from a change's commit to its arrival through the storage change feed.",
    buckets: LAG_BUCKETS,
    registers,
  });
  const live = new Gauge({ name: "egide_cache_feed_live", help: "1 while the storage change feed is live, else 0.", registers });
  let watched: StorageCache | undefined;
  new Gauge({
    name: "egide_cache_bytes",
    help: "Bytes of ciphertext records held by the cache.",
    registers,
    collect() {
      if (watched) this.set(watched.status().bytes);
    },
  });
  new Gauge({
    name: "egide_cache_entries",
    help: "Records held by the cache.",
    registers,
    collect() {
      if (watched) this.set(watched.status().entries);
    },
  });
  live.set(0);
  return {
    observer: {
      hit: () => hits.inc(),
      miss: () => misses.inc(),
      bypass: () => bypasses.inc(),
      invalidated: (count, all) => {
        if (count > 0) invalidations.inc({ kind: all ? "flush" : "key" }, count);
      },
      lag: (ms) => lag.observe(ms / 1000),
      live: (isLive) => live.set(isLive ? 1 : 0),
    },
    watch(cache) {
      watched = cache;
      live.set(cache.coherent ? 1 : 0);
    },
  };
}
