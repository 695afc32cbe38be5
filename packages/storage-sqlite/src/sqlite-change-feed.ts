import { ChangeFeedHub, type ChangeFeedListener, type ChangeFeedSubscription } from "@egide/storage-core";

/** How a {@link SqliteChangeFeed} learns of commits it did not make. */
export interface SqliteChangeFeedOptions {
  /**
   * Reads a counter that changes whenever another connection commits to the database (the
   * writer's `PRAGMA data_version`); throws when it cannot be read right now. Absent when no
   * other connection can exist (`:memory:`): then only this object's own commits are published.
   */
  readVersion?: () => number;
  /** How often to read it while the feed has subscribers, in ms. */
  pollIntervalMs: number;
  /**
   * How long reads of the counter may keep failing before the feed says it is not live, in ms
   * (the backend's busy_timeout: as long as a read would wait for a lock before failing).
   */
  failureGraceMs: number;
}

/**
 * The SQLite backend's change feed. Commits made through the backend object are published by
 * the backend itself with their keys (see {@link committed}). Commits made by any other
 * connection to the file are seen by polling a counter SQLite keeps per connection, which moves
 * only when some other connection commits; each move is published with `keys: null`, since
 * SQLite does not say what the other connection touched. Polling runs only while someone is
 * subscribed, on a timer that does not keep the process alive.
 */
export class SqliteChangeFeed {
  readonly #hub = new ChangeFeedHub((wanted) => (wanted ? this.#startPolling() : this.#idle()));
  readonly #options: SqliteChangeFeedOptions;
  #timer: NodeJS.Timeout | undefined;
  /** The counter at the last successful poll; undefined before the first one of a polling period. */
  #version: number | undefined;
  /** When polls started failing in a row (Date.now()); undefined while they succeed. */
  #failingSince: number | undefined;

  constructor(options: SqliteChangeFeedOptions) {
    this.#options = options;
    // Own commits are delivered from the start, and the first subscriber's poll confirms the rest.
    this.#hub.setLive(true);
  }

  /** Subscribes `listener` (see `StorageBackend.subscribeChanges`). */
  subscribe(listener: ChangeFeedListener): ChangeFeedSubscription {
    return this.#hub.subscribe(listener);
  }

  /** Whether a timer is polling for other connections' commits (only while someone is subscribed). */
  get polling(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Publishes a commit made through this backend object: `keys` written or deleted, each once
   * (`null`: too many to name). The caller calls it right after COMMIT succeeded and before the
   * write's promise resolves, so a writer's next read never races its own invalidation.
   */
  committed(keys: readonly string[] | null): void {
    // Nobody to tell: skip the clock read (positions number deliveries, and none is made).
    if (this.#hub.subscribers > 0) this.#hub.publish(keys, Date.now());
  }

  /** Ends the feed: polling stops and subscribers are told it is not live. Idempotent. */
  close(): void {
    this.#stopPolling();
    this.#hub.close();
  }

  #startPolling(): void {
    if (this.#options.readVersion === undefined || this.#timer !== undefined) return;
    this.#version = undefined;
    this.#failingSince = undefined;
    // The first read, now, is the baseline: a commit after it is reported, one before it is not
    // this subscriber's concern. When it fails the feed is not live until a read succeeds.
    this.#poll();
    this.#timer = setInterval(() => this.#poll(), this.#options.pollIntervalMs);
    this.#timer.unref();
  }

  /** The last subscriber left. */
  #idle(): void {
    this.#stopPolling();
    // Nobody hears this; it spares the next first subscriber a second live(true) when its
    // baseline read succeeds after a failing period (the hub tells a live feed's newcomer itself).
    this.#hub.setLive(true);
  }

  #stopPolling(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #poll(): void {
    let version: number;
    try {
      version = (this.#options.readVersion as () => number)();
    } catch {
      // The counter is cumulative, so a failed read loses nothing: the next successful one still
      // sees that something moved. Only without a baseline, or after failing for as long as a
      // read would wait for a lock, can the feed no longer promise timely deliveries.
      const now = Date.now();
      this.#failingSince ??= now;
      if (this.#version === undefined || now - this.#failingSince >= this.#options.failureGraceMs) this.#hub.setLive(false);
      return;
    }
    this.#failingSince = undefined;
    const previous = this.#version;
    this.#version = version;
    this.#hub.setLive(true);
    if (previous !== undefined && version !== previous) this.#hub.publish(null, Date.now());
  }
}
