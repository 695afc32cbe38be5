import pg from "pg";
import { destroySocket } from "./client-lease.js";
import { CHANGE_FEED_APPLICATION_NAME, clientConfig } from "./postgres-connection.js";
import type { ResolvedPostgresOptions } from "./postgres-options.js";
import { isSslNegotiationFailure, sslAttempts, type PgSsl } from "./postgres-ssl.js";

/** How long after one heartbeat answered the next is sent, in ms. */
export const HEARTBEAT_INTERVAL_MS = 200;
/** How long a heartbeat may take before the connection is given up, in ms. */
export const HEARTBEAT_DEADLINE_MS = 300;
/** The first wait before reconnecting after a failed attempt, doubled up to {@link RECONNECT_MAX_DELAY_MS}. */
const RECONNECT_FIRST_DELAY_MS = 50;
const RECONNECT_MAX_DELAY_MS = 1000;
/** Longest `LISTEN` may take on a fresh connection, in ms. */
const LISTEN_DEADLINE_MS = 5000;

/** What a {@link ListenSession} reports. Both are called synchronously and must not throw. */
export interface ListenSessionEvents {
  /** A notification on the channel (its payload, as sent). */
  notification(payload: string | undefined): void;
  /** LISTEN is in effect (`true`) or the connection that held it was lost (`false`). */
  live(live: boolean): void;
}

/** What a {@link ListenSession} is doing, for health checks and metrics. */
export interface ListenSessionStatus {
  live: boolean;
  /** Attempts to (re)connect made after a failure or a lost connection, since the backend opened. */
  reconnects: number;
  /** Why the last connection attempt failed or the last connection was lost; never holds a secret. */
  lastError?: string;
}

/**
 * The change feed's dedicated connection: outside the pool (a pooled connection would lose the
 * LISTEN, and a PgBouncer in transaction mode cannot keep one), opened by {@link start} and
 * closed by {@link stop}.
 *
 * It is live only between a successful `LISTEN` and the first sign that notifications may no
 * longer arrive. A TCP connection cut silently (no reset, no FIN) gives no such sign by itself,
 * so a heartbeat runs on the connection: a query every {@link HEARTBEAT_INTERVAL_MS} ms that
 * must answer within {@link HEARTBEAT_DEADLINE_MS} ms and must find the channel among the
 * session's listening channels (which also catches a pooler that moved us to another server
 * connection). A missed heartbeat, an error or the end of the connection makes it not live at
 * once; it then destroys the connection and reconnects with a capped backoff. So the feed is
 * never believed live much more than half a second after notifications stopped arriving.
 */
export class ListenSession {
  readonly #options: ResolvedPostgresOptions;
  readonly #channel: string;
  readonly #database: string | undefined;
  readonly #events: ListenSessionEvents;
  readonly #listenSql: string;
  readonly #heartbeatSql: string;
  /** Bumped by every stop and every lost connection: async work of an older generation gives up. */
  #generation = 0;
  #wanted = false;
  #closed = false;
  #live = false;
  #client: pg.Client | undefined;
  /** The backoff or heartbeat timer, and the heartbeat's deadline timer. */
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #delayMs = 0;
  /** The TLS choice that worked, kept so reconnects do not walk the `ssl_mode` attempts again. */
  #ssl: PgSsl | undefined;
  #reconnects = 0;
  #lastError: string | undefined;

  /**
   * @param options the connection options with the LISTEN target applied
   * @param channel the channel, a checked lower-case identifier
   * @param database the database the writes reach: a LISTEN connection that reaches another
   *   one (a wrong `listen_url`) would be live and hear nothing, so it is refused
   */
  constructor(options: ResolvedPostgresOptions, channel: string, database: string | undefined, events: ListenSessionEvents) {
    this.#options = options;
    this.#channel = channel;
    this.#database = database;
    this.#events = events;
    this.#listenSql = `LISTEN "${channel}"; SELECT current_database() AS name`;
    this.#heartbeatSql = `SELECT 1 AS listening FROM pg_listening_channels() AS c WHERE c = '${channel}'`;
  }

  /** What the session is doing now. */
  status(): ListenSessionStatus {
    return { live: this.#live, reconnects: this.#reconnects, ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}) };
  }

  /** Opens the connection and listens, reconnecting until {@link stop}. Does nothing when already started. */
  start(): void {
    if (this.#closed || this.#wanted) return;
    this.#wanted = true;
    this.#delayMs = 0;
    void this.#connect(++this.#generation);
  }

  /** Closes the connection (the feed is not live any more) until the next {@link start}. */
  stop(): void {
    this.#wanted = false;
    this.#generation++;
    this.#teardown();
    this.#setLive(false);
  }

  /** Stops for good. */
  close(): void {
    this.#closed = true;
    this.stop();
  }

  async #connect(generation: number): Promise<void> {
    try {
      const client = await this.#open(generation);
      if (generation !== this.#generation) {
        destroySocket(client);
        return;
      }
      client.on("error", (error: Error) => this.#lost(generation, error));
      client.on("end", () => this.#lost(generation, new Error("the connection ended")));
      this.#setLive(true);
      this.#heartbeat(client, generation);
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#teardown();
      this.#lastError = `connecting to ${this.#options.host}:${this.#options.port}: ${describe(error)}`;
      this.#retry();
    }
  }

  /** Connects (walking the `ssl_mode` attempts the first time) and runs `LISTEN`. */
  async #open(generation: number): Promise<pg.Client> {
    const attempts = this.#ssl !== undefined ? [this.#ssl] : sslAttempts(this.#options);
    for (const [index, ssl] of attempts.entries()) {
      const client = new pg.Client(clientConfig(this.#options, ssl, CHANGE_FEED_APPLICATION_NAME));
      // A failure after connect() settles must not be an unhandled 'error'; #connect adds the real listener.
      client.on("error", () => undefined);
      this.#client = client;
      try {
        // pg's connectionTimeoutMillis bounds the connect; stop() destroys the socket of a pending one.
        await client.connect();
      } catch (error) {
        destroySocket(client);
        if (index === attempts.length - 1 || !isSslNegotiationFailure(error) || generation !== this.#generation) throw error;
        continue;
      }
      this.#ssl = ssl;
      if (generation !== this.#generation) return client;
      // Listening before LISTEN runs: a change committed just after LISTEN may arrive before its answer.
      client.on("notification", (message: pg.Notification) => {
        if (generation === this.#generation && message.channel === this.#channel) this.#events.notification(message.payload);
      });
      const results = await this.#queryWithin(client, this.#listenSql, LISTEN_DEADLINE_MS);
      const reached = (Array.isArray(results) ? results.at(-1) : results)?.rows[0]?.name;
      if (this.#database !== undefined && reached !== this.#database) {
        throw new Error(
          `the LISTEN connection reaches database ${JSON.stringify(reached)}, not ${JSON.stringify(this.#database)} where the writes go`,
        );
      }
      return client;
    }
    throw new Error("no connection attempt to make");
  }

  /** Schedules the next heartbeat on `client`. */
  #heartbeat(client: pg.Client, generation: number): void {
    this.#timer = setTimeout(() => this.#beat(client, generation), HEARTBEAT_INTERVAL_MS);
    this.#timer.unref();
  }

  #beat(client: pg.Client, generation: number): void {
    if (generation !== this.#generation) return;
    let answered = false;
    this.#deadline = setTimeout(() => {
      // Timers run before I/O in each turn of the event loop: after a stalled loop the answer may
      // be waiting unread. setImmediate runs after that I/O, so only a truly missing answer counts.
      setImmediate(() => {
        if (!answered) this.#lost(generation, new Error(`heartbeat: no answer within ${HEARTBEAT_DEADLINE_MS} ms`));
      }).unref();
    }, HEARTBEAT_DEADLINE_MS);
    this.#deadline.unref();
    client.query<{ listening: number }>(this.#heartbeatSql).then(
      (result) => {
        answered = true;
        clearTimeout(this.#deadline);
        if (generation !== this.#generation) return;
        if (result.rows.length !== 1) {
          this.#lost(generation, new Error("LISTEN is not in effect on the connection (a pooler in transaction mode in the way?)"));
          return;
        }
        // A connection that answers heartbeats is healthy: the next failure reconnects at once.
        this.#delayMs = 0;
        this.#heartbeat(client, generation);
      },
      (error: unknown) => {
        answered = true;
        clearTimeout(this.#deadline);
        this.#lost(generation, error);
      },
    );
  }

  /** The connection of `generation` failed: not live any more, destroy it, reconnect. */
  #lost(generation: number, error: unknown): void {
    if (generation !== this.#generation) return;
    this.#generation++;
    this.#lastError = `connection to ${this.#options.host}:${this.#options.port} lost: ${describe(error)}`;
    this.#teardown();
    this.#setLive(false);
    this.#retry();
  }

  /** Connects again after the current backoff delay, then doubles it. */
  #retry(): void {
    if (!this.#wanted || this.#closed) return;
    const generation = this.#generation;
    const delay = this.#delayMs;
    this.#delayMs = Math.min(Math.max(delay * 2, RECONNECT_FIRST_DELAY_MS), RECONNECT_MAX_DELAY_MS);
    this.#timer = setTimeout(() => {
      if (generation !== this.#generation) return;
      this.#reconnects++;
      void this.#connect(generation);
    }, delay);
    this.#timer.unref();
  }

  /** Clears the timers and destroys the connection, whatever state it is in. */
  #teardown(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#timer = undefined;
    this.#deadline = undefined;
    const client = this.#client;
    this.#client = undefined;
    if (client) destroySocket(client);
  }

  #setLive(live: boolean): void {
    if (live === this.#live) return;
    this.#live = live;
    this.#events.live(live);
  }

  /** Runs `text` on `client` (one result per statement); past `ms` the socket is destroyed, which fails the query. */
  async #queryWithin(
    client: pg.Client,
    text: string,
    ms: number,
  ): Promise<pg.QueryResult<{ name?: string }> | pg.QueryResult<{ name?: string }>[]> {
    const timer = setTimeout(() => destroySocket(client), ms);
    timer.unref();
    try {
      return await client.query(text);
    } finally {
      clearTimeout(timer);
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
