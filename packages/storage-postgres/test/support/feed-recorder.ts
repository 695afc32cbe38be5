import type { ChangeFeedListener, ChangeFeedSubscription, StorageChange } from "@egide/storage-core";

/** What one subscriber was told, in order, with the time each `live` came. */
export interface FeedRecorder {
  readonly listener: ChangeFeedListener;
  readonly changes: StorageChange[];
  readonly lives: { live: boolean; at: number }[];
  /** The keys of every change, in order (`null` for "unknown"). */
  keys(): (readonly string[] | null)[];
  /** The last `live` value told (false before any). */
  readonly live: boolean;
}

/** A listener that records everything it is told. */
export function feedRecorder(): FeedRecorder {
  const changes: StorageChange[] = [];
  const lives: { live: boolean; at: number }[] = [];
  return {
    listener: {
      change: (change) => changes.push(change),
      live: (live) => lives.push({ live, at: performance.now() }),
    },
    changes,
    lives,
    keys: () => changes.map((change) => change.keys),
    get live() {
      return lives.at(-1)?.live ?? false;
    },
  };
}

/** Polls `condition` every 5 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<number> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - started;
}

/** As {@link waitFor}, for a condition that has to ask the database. */
export async function waitForAsync(what: string, condition: () => Promise<boolean>, timeoutMs = 5000): Promise<number> {
  const started = performance.now();
  while (!(await condition())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return performance.now() - started;
}

/** Waits until `subscription` is live. */
export function waitLive(subscription: ChangeFeedSubscription, timeoutMs = 5000): Promise<number> {
  return waitFor("the change feed to be live", () => subscription.live, timeoutMs);
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
