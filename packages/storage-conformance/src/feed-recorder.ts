import type { ChangeFeedListener, ChangeFeedSubscription, StorageBackend, StorageChange } from "@egide/storage-core";
import { sleep } from "./sleep.js";

/** How long a new subscription may take to become live (a feed connection to open, say). */
export const FEED_LIVE_TIMEOUT_MS = 10_000;

/**
 * How long the feed tests keep listening after their writes before concluding that nothing
 * more arrives: long enough for a database notification about a commit the backend already
 * published to come back (a duplicate), short enough to keep the suite quick.
 */
export const FEED_QUIET_MS = 200;

/**
 * A {@link ChangeFeedListener} that records what it is told, in order, for assertions. `live`
 * lists every `live(…)` call; `changes` every change, as delivered (not copied, so a backend
 * that reuses a delivered object shows).
 */
export class FeedRecorder implements ChangeFeedListener {
  readonly changes: StorageChange[] = [];
  readonly liveCalls: boolean[] = [];

  change(change: StorageChange): void {
    this.changes.push(change);
  }

  live(live: boolean): void {
    this.liveCalls.push(live);
  }

  /** The keys of every change, sorted within each change (key order within a change is free). */
  keysPerChange(): (string[] | null)[] {
    return this.changes.map((change) => (change.keys === null ? null : [...change.keys].sort()));
  }
}

/** The backend's `subscribeChanges`, or a failure saying it is declared but missing. */
export function subscribeChangesOf(backend: StorageBackend): (listener: ChangeFeedListener) => ChangeFeedSubscription {
  const subscribe = backend.subscribeChanges;
  if (typeof subscribe !== "function") {
    throw new Error("capabilities.changeFeed declares backend.subscribeChanges(), which this backend does not have");
  }
  return (listener) => subscribe.call(backend, listener);
}

/**
 * Subscribes `recorder` and waits until the subscription is live (told `live(true)`, and
 * `subscription.live`), failing after {@link FEED_LIVE_TIMEOUT_MS}.
 */
export async function subscribeLive(backend: StorageBackend, recorder: FeedRecorder): Promise<ChangeFeedSubscription> {
  const subscription = subscribeChangesOf(backend)(recorder);
  const deadline = performance.now() + FEED_LIVE_TIMEOUT_MS;
  while (!(subscription.live && recorder.liveCalls.at(-1) === true)) {
    if (performance.now() > deadline) {
      subscription.close();
      throw new Error(
        `the change feed did not become live within ${FEED_LIVE_TIMEOUT_MS} ms ` +
          `(subscription.live ${subscription.live}, live() calls [${recorder.liveCalls.join(", ")}])`,
      );
    }
    await sleep(5);
  }
  return subscription;
}
