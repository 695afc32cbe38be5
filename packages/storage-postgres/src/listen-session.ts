import { randomBytes } from "node:crypto";
import pg from "pg";
import { destroySocket } from "./client-lease.js";
import { CHANGE_FEED_APPLICATION_NAME, clientConfig } from "./postgres-connection.js";
import type { PostgresHost } from "./postgres-hosts.js";
import { withHiddenPassword, type ResolvedPostgresOptions } from "./postgres-options.js";
import { isSslNegotiationFailure, sslAttempts, type PgSsl } from "./postgres-ssl.js";

/** How long after one probe came back the next is sent, in ms. */
export const PROBE_INTERVAL_MS = 250;
/**
 * How long a probe may take, from sending its NOTIFY through the pool to its notification
 * arriving on the LISTEN connection (and the pool query answering), in ms.
 */
export const PROBE_DEADLINE_MS = 400;
/** Longest the probe's pool query may run before its connection is destroyed, in ms: it bounds the one probe in flight. */
export const PROBE_QUERY_TIMEOUT_MS = 1000;
/** The first wait before reconnecting after a failed attempt, doubled up to {@link RECONNECT_MAX_DELAY_MS}. */
const RECONNECT_FIRST_DELAY_MS = 50;
const RECONNECT_MAX_DELAY_MS = 1000;
/** Longest `LISTEN` may take on a fresh connection, in ms. */
const LISTEN_DEADLINE_MS = 5000;

/** What a {@link ListenSession} reports. Both are called synchronously and must not throw. */
export interface ListenSessionEvents {
  /** A notification on the channel (its payload, as sent). */
  notification(payload: string | undefined): void;
  /**
   * Notifications are known to arrive (`true`: a probe made the round trip) or may not any more
   * (`false`).
   */
  live(live: boolean): void;
}

/**
 * Runs one statement through the backend's pool (the path writes and their NOTIFYs take), giving
 * up within `timeoutMs`; resolves when it answered, rejects when it failed.
 */
export type PoolProbe = (text: string, timeoutMs: number) => Promise<void>;

/** What a {@link ListenSession} is doing, for health checks and metrics. */
export interface ListenSessionStatus {
  live: boolean;
  /** Where the connection goes (or last went). */
  host: string;
  port: number;
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
 * Being connected and having run `LISTEN` proves little: a TCP connection cut silently gives no
 * sign, and a LISTEN connection that goes through PgBouncer in transaction mode (a forgotten
 * `listen_host`) answers every query while PgBouncer drops the notifications that reach its
 * server connection between them. So liveness is checked end to end: the connection also
 * LISTENs on a private probe channel, and every {@link PROBE_INTERVAL_MS} ms a
 * `pg_notify(<probe channel>, <sequence>)` goes out through the backend's pool, the path the
 * writes take; its notification must arrive here, and the query must answer, within
 * {@link PROBE_DEADLINE_MS} ms. The session is live only from the first probe that made the round
 * trip after `LISTEN`; a missing probe, a failed probe query, an error or the end of the
 * connection makes it not live at once, and it then destroys the connection and reconnects with
 * a capped backoff. So the feed is never believed live much more than
 * {@link PROBE_INTERVAL_MS} + {@link PROBE_DEADLINE_MS} ms after notifications stopped arriving.
 *
 * The probe replaces the former `pg_listening_channels()` heartbeat on the LISTEN connection,
 * which it subsumes: a notification that arrived proves both that the connection is up and that
 * LISTEN is in effect on it, and PgBouncer handing the heartbeat the very server connection that
 * holds the LISTEN could fool that heartbeat, not the probe.
 */
export class ListenSession {
  readonly #options: ResolvedPostgresOptions;
  /** Where the pool writes now, when this connection follows it. */
  readonly #follow: (() => PostgresHost | undefined) | undefined;
  /** The host of the current or last connection attempt. */
  #target: PostgresHost;
  readonly #channel: string;
  /** This session's private channel for probes, unique per session: no other session's probe counts. */
  readonly #probeChannel = `egide_probe_${randomBytes(12).toString("hex")}`;
  readonly #database: string | undefined;
  readonly #events: ListenSessionEvents;
  readonly #poolProbe: PoolProbe;
  readonly #listenSql: string;
  /** Bumped by every stop and every lost connection: async work of an older generation gives up. */
  #generation = 0;
  #wanted = false;
  #closed = false;
  #live = false;
  #client: pg.Client | undefined;
  /** The backoff or next-probe timer, and the probe's deadline timer. */
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #delayMs = 0;
  /** The TLS choice that worked, kept so reconnects do not walk the `ssl_mode` attempts again. */
  #ssl: PgSsl | undefined;
  #reconnects = 0;
  #lastError: string | undefined;
  /** The last probe's sequence number; each probe's payload is its own. */
  #sequence = 0;
  /** The probe waiting for its notification: its payload, and what to call when it arrives. */
  #expected: { payload: string; arrived(): void } | undefined;
  /** The pool query of the probe in flight (there is never more than one), settled or not. */
  #inFlight: Promise<void> | undefined;

  /**
   * @param options the connection options with the LISTEN target applied
   * @param channel the channel, a checked lower-case identifier
   * @param database the database the writes reach: a LISTEN connection that reaches another
   *   one (a wrong `listen_url`) would be live and hear nothing, so it is refused
   * @param poolProbe runs a probe's `pg_notify` through the pool the writes use
   * @param follow where the pool writes now: when given, every connection goes to that host
   *   (its `options.host`/`port` are only the first host's). After a failover the probes, which
   *   the pool sends to the new host, stop arriving on the old one: the session reconnects, there.
   */
  constructor(
    options: ResolvedPostgresOptions,
    channel: string,
    database: string | undefined,
    events: ListenSessionEvents,
    poolProbe: PoolProbe,
    follow?: () => PostgresHost | undefined,
  ) {
    this.#options = options;
    this.#follow = follow;
    this.#target = { host: options.host, port: options.port };
    this.#channel = channel;
    this.#database = database;
    this.#events = events;
    this.#poolProbe = poolProbe;
    this.#listenSql = `LISTEN "${channel}"; LISTEN "${this.#probeChannel}"; SELECT current_database() AS name`;
  }

  /** What the session is doing now. */
  status(): ListenSessionStatus {
    return {
      live: this.#live,
      host: this.#target.host,
      port: this.#target.port,
      reconnects: this.#reconnects,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
    };
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
      // Live only once a probe has made the round trip: LISTEN succeeding proves nothing about delivery.
      this.#probe(generation);
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#teardown();
      this.#lastError = `connecting to ${this.#target.host}:${this.#target.port}: ${describe(error)}`;
      this.#retry();
    }
  }

  /** Connects (walking the `ssl_mode` attempts the first time) and runs `LISTEN`. */
  async #open(generation: number): Promise<pg.Client> {
    let options = this.#options;
    if (this.#follow) {
      const target = this.#follow() ?? this.#target;
      if (target.host !== this.#target.host || target.port !== this.#target.port) {
        // Another server: its TLS choice is settled anew.
        this.#ssl = undefined;
        this.#target = { host: target.host, port: target.port };
      }
      options = withHiddenPassword({ ...options, host: target.host, port: target.port }, options.password);
    }
    const attempts = this.#ssl !== undefined ? [this.#ssl] : sslAttempts(options);
    for (const [index, ssl] of attempts.entries()) {
      const client = new pg.Client(clientConfig(options, ssl, CHANGE_FEED_APPLICATION_NAME));
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
        if (generation !== this.#generation) return;
        if (message.channel === this.#channel) {
          this.#events.notification(message.payload);
          return;
        }
        // A probe counts only when it is the one awaited: a late one proves nothing about now.
        const expected = this.#expected;
        if (message.channel === this.#probeChannel && expected !== undefined && message.payload === expected.payload) expected.arrived();
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

  /** Schedules the next probe. */
  #nextProbe(generation: number): void {
    this.#timer = setTimeout(() => this.#probe(generation), PROBE_INTERVAL_MS);
    this.#timer.unref();
  }

  /**
   * Sends one probe through the pool and gives up on the connection unless its notification
   * arrives here, and the query answers, within {@link PROBE_DEADLINE_MS} ms.
   */
  #probe(generation: number): void {
    if (generation !== this.#generation) return;
    // One probe in flight at a time: a pool query still running (from before a reconnect, or
    // waiting for a pooled connection) is waited for, not doubled.
    const previous = this.#inFlight;
    if (previous) {
      void previous.then(() => this.#probe(generation));
      return;
    }
    const payload = String(++this.#sequence);
    let arrived = false;
    let answered = false;
    const done = () => {
      if (!arrived || !answered || generation !== this.#generation) return;
      this.#expected = undefined;
      clearTimeout(this.#deadline);
      this.#setLive(true);
      // A round trip made: the connection is healthy, and the next failure reconnects at once.
      this.#delayMs = 0;
      this.#nextProbe(generation);
    };
    this.#expected = {
      payload,
      arrived: () => {
        arrived = true;
        done();
      },
    };
    this.#deadline = setTimeout(() => {
      // Timers run before I/O in each turn of the event loop: after a stalled loop the
      // notification may be waiting unread. setImmediate runs after that I/O, so only a truly
      // missing probe counts.
      setImmediate(() => {
        if (generation !== this.#generation || (arrived && answered)) return;
        this.#lost(
          generation,
          new Error(
            arrived
              ? `heartbeat: the probe query through the pool did not answer within ${PROBE_DEADLINE_MS} ms`
              : `heartbeat: a probe notification sent through the pool did not arrive within ${PROBE_DEADLINE_MS} ms: the ` +
                  "connection is lost or LISTEN is not in effect on it (a pooler in transaction mode in the way of the LISTEN connection?)",
          ),
        );
      }).unref();
    }, PROBE_DEADLINE_MS);
    this.#deadline.unref();
    const text = `SELECT pg_notify('${this.#probeChannel}', '${payload}')`;
    let query: Promise<void>;
    try {
      query = this.#poolProbe(text, PROBE_QUERY_TIMEOUT_MS);
    } catch (error) {
      query = Promise.reject(error);
    }
    const inFlight = query.then(
      () => {
        answered = true;
        done();
      },
      (error: unknown) => {
        // The database is unreachable through the pool, or the pool is closed: writes fail too,
        // and nothing proves that notifications still arrive.
        this.#lost(generation, new Error(`heartbeat: the probe query through the pool failed: ${describe(error)}`));
      },
    );
    this.#inFlight = inFlight;
    void inFlight.then(() => {
      if (this.#inFlight === inFlight) this.#inFlight = undefined;
    });
  }

  /** The connection of `generation` failed: not live any more, destroy it, reconnect. */
  #lost(generation: number, error: unknown): void {
    if (generation !== this.#generation) return;
    this.#generation++;
    this.#lastError = `connection to ${this.#target.host}:${this.#target.port} lost: ${describe(error)}`;
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
    this.#expected = undefined;
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
