import type { ChangeFeedSubscription, StorageBackend, StorageChange } from "@egide/storage-core";

/** What one subscriber of a change feed was told, in order. */
export interface ChangeRecorder {
  readonly changes: StorageChange[];
  /** Every `live` call, in order. */
  readonly lives: boolean[];
  readonly subscription: ChangeFeedSubscription;
  /** The keys of each change, in order (`null` for "unknown"). */
  keys(): Array<readonly string[] | null>;
}

/** Subscribes to `backend`'s change feed and records what it is told. */
export function recordChanges(backend: Pick<StorageBackend, "subscribeChanges">): ChangeRecorder {
  const changes: StorageChange[] = [];
  const lives: boolean[] = [];
  const subscription = (backend.subscribeChanges as NonNullable<StorageBackend["subscribeChanges"]>)({
    change: (change) => changes.push(change),
    live: (live) => lives.push(live),
  });
  return { changes, lives, subscription, keys: () => changes.map((change) => change.keys) };
}

/** Resolves once `condition()` holds, checking every few milliseconds; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, what = "condition"): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (condition()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(2);
  }
}

/** Waits `ms` milliseconds of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
