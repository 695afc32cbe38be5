import { randomBytes } from "node:crypto";
import { ChangeFeedHub, type ChangeFeedListener, type ChangeFeedSubscription } from "@egide/storage-core";
import { changeChannel, decodeChange, encodeChange } from "./change-notification.js";
import { ListenSession, type PoolProbe } from "./listen-session.js";
import type { PostgresHost } from "./postgres-hosts.js";
import { withHiddenPassword, type ResolvedPostgresOptions } from "./postgres-options.js";

/** The change feed's state, for health checks and metrics. Never holds a secret. */
export interface ChangeFeedStatus {
  /**
   * Whether the feed is live: a probe notification sent through the pool, as the writes are,
   * reached the LISTEN connection within the last probe period (about 650 ms).
   */
  live: boolean;
  /** Where the LISTEN connection goes (with several hosts and no `listen_host`: where the pool is now). */
  host: string;
  port: number;
  /** The NOTIFY channel (`egide_changes_<schema>`). */
  channel: string;
  /** Open subscriptions; the LISTEN connection is open only while there is one. */
  subscribers: number;
  /** Reconnection attempts after a failed attempt or a lost connection, since the backend opened. */
  reconnects: number;
  /** Why the last attempt failed or the last connection was lost. */
  lastError?: string;
}

/**
 * The PostgreSQL change feed of one backend object: writers NOTIFY on the schema's channel
 * (this class gives them the payload) and publish their own commits locally; a dedicated
 * connection LISTENs for the others' while anyone subscribes.
 *
 * Every backend object has a random origin id, sent in each payload: its own notifications
 * come back on its LISTEN connection and are dropped there, since they were delivered locally
 * already, before the write resolved.
 */
export class PostgresChangeFeed {
  /** This backend object's origin id. */
  readonly origin = randomBytes(12).toString("base64url");
  /** The NOTIFY channel. */
  readonly channel: string;
  readonly #hub: ChangeFeedHub;
  readonly #session: ListenSession;

  /**
   * @param options the backend's options
   * @param database the database the writes reach (`current_database()` on the main connection),
   *   which the LISTEN connection must reach too
   * @param poolProbe runs one statement through the backend's pool: the feed's delivery probes
   *   take the path of the writes, so a feed that cannot hear them is not live
   * @param follow where the pool writes now, when the LISTEN connection must follow it (several
   *   hosts, no `listen_host`); each (re)connection goes there, and a probe lost after the pool
   *   moved makes it reconnect
   */
  constructor(
    options: ResolvedPostgresOptions,
    database: string | undefined,
    poolProbe: PoolProbe,
    follow?: () => PostgresHost | undefined,
  ) {
    this.channel = changeChannel(options.schema);
    // Spreading drops the hidden password: pass it on explicitly.
    const listen = withHiddenPassword({ ...options, ...options.listen }, options.password);
    this.#session = new ListenSession(
      listen,
      this.channel,
      database,
      {
        notification: (payload) => this.#received(payload),
        live: (live) => this.#hub.setLive(live),
      },
      poolProbe,
      follow,
    );
    this.#hub = new ChangeFeedHub((wanted) => (wanted ? this.#session.start() : this.#session.stop()));
  }

  /** Subscribes to the feed (see `StorageBackend.subscribeChanges`). */
  subscribe(listener: ChangeFeedListener): ChangeFeedSubscription {
    return this.#hub.subscribe(listener);
  }

  /** The NOTIFY payload of a commit of `keys` at `committedAt` by this backend object. */
  payload(keys: readonly string[], committedAt: number): string {
    return encodeChange(this.origin, committedAt, keys);
  }

  /** Delivers a commit of this backend object to the local subscribers (before the write resolves). */
  committed(keys: readonly string[], committedAt: number): void {
    this.#hub.publish(keys, committedAt);
  }

  /** The feed's state. */
  status(): ChangeFeedStatus {
    const session = this.#session.status();
    return {
      live: this.#hub.live,
      host: session.host,
      port: session.port,
      channel: this.channel,
      subscribers: this.#hub.subscribers,
      reconnects: session.reconnects,
      ...(session.lastError !== undefined ? { lastError: session.lastError } : {}),
    };
  }

  /** Closes the LISTEN connection and ends every subscription (told `live(false)`). Idempotent. */
  close(): void {
    this.#session.close();
    this.#hub.close();
  }

  #received(payload: string | undefined): void {
    const change = decodeChange(payload);
    if (change.origin === this.origin) return;
    this.#hub.publish(change.keys, change.committedAt);
  }
}
