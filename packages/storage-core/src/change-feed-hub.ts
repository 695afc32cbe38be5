import type { ChangeFeedListener, ChangeFeedSubscription, StorageChange } from "./change-feed.js";

/** Called when the first subscriber arrives (`true`) or the last one leaves (`false`). */
export type DemandListener = (wanted: boolean) => void;

/**
 * The in-process half of a change feed, for backend authors: it numbers changes, fans each one
 * out to every subscriber, and remembers whether the feed is live. A backend publishes what it
 * learns (its own commits, notifications from the database) and reports liveness; the hub
 * keeps subscribers isolated from each other (a throwing listener is ignored, not allowed to
 * stop the others).
 */
export class ChangeFeedHub {
  readonly #subscribers = new Set<ChangeFeedListener>();
  readonly #onDemand: DemandListener | undefined;
  #live = false;
  #position = 0;
  #closed = false;

  /** `onDemand` lets a backend open its feed connection only while someone listens. */
  constructor(onDemand?: DemandListener) {
    this.#onDemand = onDemand;
  }

  /** Whether the feed is live now. */
  get live(): boolean {
    return this.#live;
  }

  /** The number of open subscriptions. */
  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** The position of the last change published (0 before the first). */
  get position(): number {
    return this.#position;
  }

  /** Adds a subscriber; it is told `live(true)` at once when the feed is live already. */
  subscribe(listener: ChangeFeedListener): ChangeFeedSubscription {
    // A distinct object per subscription, so one listener subscribed twice is two subscribers.
    const subscriber: ChangeFeedListener = { change: (change) => listener.change(change), live: (live) => listener.live(live) };
    const hub = this;
    let open = !this.#closed;
    if (open) {
      this.#subscribers.add(subscriber);
      if (this.#subscribers.size === 1) this.#onDemand?.(true);
      if (this.#live) deliver(() => subscriber.live(true));
    }
    return {
      get live() {
        return open && hub.#live;
      },
      close() {
        if (!open) return;
        open = false;
        hub.#subscribers.delete(subscriber);
        if (hub.#subscribers.size === 0 && !hub.#closed) hub.#onDemand?.(false);
      },
    };
  }

  /** Delivers one committed change (`keys` `null`: anything may have changed) to every subscriber. */
  publish(keys: readonly string[] | null, committedAt: number = Date.now()): void {
    if (this.#closed) return;
    this.#position += 1;
    const change: StorageChange = { position: this.#position, keys, committedAt };
    for (const subscriber of [...this.#subscribers]) deliver(() => subscriber.change(change));
  }

  /** Records whether the feed is live, telling every subscriber when that changes. */
  setLive(live: boolean): void {
    if (this.#closed || live === this.#live) return;
    this.#live = live;
    for (const subscriber of [...this.#subscribers]) deliver(() => subscriber.live(live));
  }

  /** Ends the feed (the backend closed): subscribers are told it is not live, then dropped. */
  close(): void {
    if (this.#closed) return;
    this.setLive(false);
    this.#closed = true;
    this.#subscribers.clear();
  }
}

function deliver(call: () => void): void {
  try {
    call();
  } catch {
    // A listener must not throw; one that does loses only its own delivery.
  }
}
