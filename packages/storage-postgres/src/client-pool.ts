import pg from "pg";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { ClientLease, DeadlineExceeded } from "./client-lease.js";
import { findWritableHost, isWritable, optionsForHost, type FoundHost } from "./find-writable-host.js";
import { clientConfig } from "./postgres-connection.js";
import { isConnectionFailure, isRetryableConnectionLoss, toStorageError } from "./postgres-errors.js";
import { formatHost, type ActiveHost } from "./postgres-hosts.js";
import type { ResolvedPostgresOptions } from "./postgres-options.js";
import type { PgSsl } from "./postgres-ssl.js";
import { POSTGRES_TYPE } from "./postgres-type.js";
import { PreparedStatements } from "./prepared-statements.js";

/** Connection counts of the pool, for the metrics package. */
export interface PoolStats {
  /** Connections open. */
  total: number;
  /** Open connections not in use. */
  idle: number;
  /** Connections checked out by a call or transaction. */
  active: number;
  /** Calls waiting for a connection. */
  waiting: number;
}

/**
 * After a search found no writable host, further callers get its error for this long (ms)
 * before the next search: during a failover every request would otherwise open a connection to
 * each host.
 */
export const REDISCOVER_INTERVAL_MS = 200;

/** The pool of one host, and what its leases report their query errors to. */
interface HostPool {
  pool: pg.Pool;
  active: ActiveHost;
  /** Undefined with a single host and `target_session_attrs = any`: nothing to fail over to. */
  onError: ((error: unknown) => void) | undefined;
}

/**
 * The `pg.Pool` behind one backend: hands clients out as {@link ClientLease}s against a
 * deadline, runs storage statements on them (named once used often enough), and says what a
 * failure to get a client means. `PostgresBackend` builds its operations on this; keeping it
 * apart keeps the backend to what each operation does.
 *
 * With several hosts (or `target_session_attrs = read-write`) the pool is one host's, found by
 * {@link findWritableHost}; every new connection is checked (`SHOW transaction_read_only` must
 * be `off` under read-write). A failure that says the host is gone or no longer writable (a
 * refused connection, an admin or crash shutdown, a lost connection, SQLSTATE 25006
 * read_only_sql_transaction, a new connection that is read-only) starts one search (single
 * flight), which tries the current host first and then the others in order; when it finds
 * another, a pool on that host replaces this one, and the old pool is ended: its idle
 * connections close at once, the checked-out ones when they come back. Callers waiting for a
 * connection wait for the search. With one host and `any` none of this runs: the pool is
 * exactly the single-host pool.
 */
export class ClientPool {
  readonly #options: ResolvedPostgresOptions;
  #current: HostPool;
  readonly #prepared: PreparedStatements;
  /** Whether there may be another host to move to (several hosts, or read-write on one). */
  readonly #failover: boolean;
  /** The search for a writable host in flight. */
  #discovering: Promise<void> | undefined;
  /** The last search's failure, while no writable host is known. */
  #lost: { at: number; error: StorageError } | undefined;
  /** Pools of hosts left behind, still closing. */
  readonly #retired = new Set<Promise<void>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  /**
   * Opens the pool on `host` (the first host, or the one {@link findWritableHost} found) with
   * the TLS choice that worked for the first connection.
   */
  constructor(
    options: ResolvedPostgresOptions,
    ssl: PgSsl,
    host: ActiveHost = { ...options.hosts[0]!, index: 0, hostCount: options.hosts.length },
  ) {
    this.#options = options;
    this.#prepared = new PreparedStatements(options.prepareThreshold);
    this.#failover = options.hosts.length > 1 || options.targetSessionAttrs === "read-write";
    this.#current = this.#open({ ...host, ssl });
  }

  /** Connection counts of the pool (of the host in use). */
  stats(): PoolStats {
    const pool = this.#current.pool;
    const total = pool.totalCount;
    const idle = pool.idleCount;
    return { total, idle, active: total - idle, waiting: pool.waitingCount };
  }

  /** The host the pool connects to now; undefined while no writable host is known (the last search found none). */
  activeHost(): ActiveHost | undefined {
    return this.#lost ? undefined : { ...this.#current.active };
  }

  /** Waits for checked-out clients to come back, then closes every connection. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= Promise.all([this.#current.pool.end().catch(() => undefined), ...this.#retired]).then(() => undefined);
    return this.#closing;
  }

  /** Runs a storage statement on a lease, named once it is used often enough. */
  query<R extends pg.QueryResultRow>(lease: ClientLease, text: string, values: unknown[], operation: string): Promise<pg.QueryResult<R>> {
    const name = this.#prepared.nameFor(text);
    return lease.query<R>(name ? { text, values, name } : { text, values }, this.#options.operationTimeoutMs, operation);
  }

  /**
   * A point operation: validate, then one statement on a leased client. This is the hot path,
   * so it is one async step from checkout to release. Single statements are idempotent (get,
   * exists, an upsert of the same value, a delete), so one that lost its connection (a
   * restarted server, a terminated backend) is tried once more on a fresh one; a missed
   * deadline is not (the server is slow or gone).
   */
  point<R extends pg.QueryResultRow>(operation: string, check: () => void, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      check();
      this.assertOpen();
    } catch (error) {
      return Promise.reject(toStorageError(error, operation));
    }
    return this.#statement<R>(operation, text, values).catch((error: unknown) => {
      // With another host to move to, a statement refused as read-only (a demoted or fenced
      // primary: nothing was written) is tried again too, after the search its error started.
      if (!this.movesOnReadOnly(error) && !isRetryableConnectionLoss(error)) throw error;
      return this.#statement<R>(operation, text, values);
    });
  }

  /** Runs `fn` on a leased client; the whole call, connection wait included, has one deadline. */
  async withClient<T>(operation: string, fn: (lease: ClientLease) => Promise<T>): Promise<T> {
    const lease = await this.lease(operation, Date.now() + this.#options.operationTimeoutMs);
    try {
      return await fn(lease);
    } catch (error) {
      lease.markBroken();
      throw toStorageError(error, operation);
    } finally {
      lease.release();
    }
  }

  /** A client for the caller to release; with `deadlineAt` (epoch ms) no query of it runs past then. */
  async lease(operation: string, deadlineAt?: number): Promise<ClientLease> {
    this.assertOpen();
    try {
      // The pool's connectionTimeoutMillis bounds the wait, for a new connection and for a
      // free one alike.
      if (!this.#failover) return new ClientLease(await this.#current.pool.connect(), deadlineAt);
      const [client, from] = await this.#connectFailover();
      return new ClientLease(client, deadlineAt, from.onError);
    } catch (error) {
      throw this.#connectFailure(error, operation);
    }
  }

  /**
   * Whether a call that failed with `error` may run again at once on another connection because
   * the host it ran on turned read-only (nothing was written) and there may be another host: the
   * search its error started is waited for by the next connection.
   */
  movesOnReadOnly(error: unknown): boolean {
    return this.#failover && StorageError.isInstance(error, StorageErrorCode.READ_ONLY);
  }

  /** Throws `CLOSED` once {@link close} has been called. */
  assertOpen(): void {
    if (this.#closed) throw new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: POSTGRES_TYPE });
  }

  async #statement<R extends pg.QueryResultRow>(operation: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    const deadlineAt = Date.now() + this.#options.operationTimeoutMs;
    let client: pg.PoolClient;
    let onError: ((error: unknown) => void) | undefined;
    try {
      if (this.#failover) [client, { onError }] = await this.#connectFailover();
      else client = await this.#current.pool.connect();
    } catch (error) {
      throw this.#connectFailure(error, operation);
    }
    const lease = new ClientLease(client, deadlineAt, onError);
    try {
      return await this.query<R>(lease, text, values, operation);
    } catch (error) {
      throw toStorageError(error, operation);
    } finally {
      lease.release();
    }
  }

  /** A pool on `host`: under read-write, each new connection must be writable. */
  #open(host: FoundHost): HostPool {
    const options = optionsForHost(this.#options, host);
    const readWrite = this.#options.targetSessionAttrs === "read-write";
    const pool = new pg.Pool({
      ...clientConfig(options, host.ssl),
      min: this.#options.poolMin,
      max: this.#options.poolMax,
      idleTimeoutMillis: this.#options.idleTimeoutMs,
      // pg-pool's hook for a new connection (before anyone uses it): a connection that fails it
      // is destroyed and its caller gets the error, which starts a search.
      ...(readWrite
        ? {
            verify: (client: pg.PoolClient, done: (error?: Error) => void) => {
              isWritable(client).then(
                (writable) => done(writable ? undefined : readOnlyHost(host)),
                (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
              );
            },
          }
        : {}),
    } as pg.PoolConfig);
    // An idle client whose connection dies is reported here; the pool drops it. Without a
    // listener the 'error' event would crash the process.
    pool.on("error", () => undefined);
    // Every client listens for 'error' from birth, not only once a lease holds it: a session
    // terminated between its connect and its first lease (a pg-pool hand-over window, e.g. for
    // a caller that timed out meanwhile) must not crash the process. Its next query fails anyway.
    pool.on("connect", (client: pg.PoolClient) => {
      client.on("error", () => undefined);
    });
    const hostPool: HostPool = {
      pool,
      active: { host: host.host, port: host.port, index: host.index, hostCount: this.#options.hosts.length },
      onError: undefined,
    };
    if (this.#failover) {
      hostPool.onError = (error) => {
        if (hostPool === this.#current && isHostFailure(error)) this.#rediscover(hostPool).catch(() => undefined);
      };
    }
    return hostPool;
  }

  /**
   * A client from the pool of the writable host: waits for a search in flight, searches first
   * while no writable host is known, and when the current host refuses (gone, read-only)
   * searches and tries once more on whatever host that found.
   */
  async #connectFailover(): Promise<[pg.PoolClient, HostPool]> {
    if (this.#discovering) await this.#discovering.catch(() => undefined);
    if (this.#lost) await this.#rediscover(undefined);
    const current = this.#current;
    try {
      return [await current.pool.connect(), current];
    } catch (error) {
      if (this.#closed || !isHostFailure(error)) throw error;
      await this.#rediscover(current);
      const next = this.#current;
      return [await next.pool.connect(), next];
    }
  }

  /**
   * Searches for a writable host (single flight) unless the pool moved away from `from`
   * already; while the last search failed less than {@link REDISCOVER_INTERVAL_MS} ago, rejects
   * with its error without searching.
   */
  #rediscover(from: HostPool | undefined): Promise<void> {
    if (from !== undefined && from !== this.#current) return Promise.resolve();
    if (this.#discovering) return this.#discovering;
    const lost = this.#lost;
    if (lost && Date.now() - lost.at < REDISCOVER_INTERVAL_MS) return Promise.reject(lost.error);
    this.#discovering = this.#discover().finally(() => {
      this.#discovering = undefined;
    });
    return this.#discovering;
  }

  async #discover(): Promise<void> {
    const current = this.#current;
    let found: FoundHost;
    try {
      // The host in use first: a lost connection or a restart of it does not move the pool
      // (nor flap it between two writable servers); then the others in their order.
      found = await findWritableHost(this.#options, current.active.index);
    } catch (error) {
      const failure = toStorageError(error, "finding a writable host");
      this.#lost = { at: Date.now(), error: failure };
      throw failure;
    }
    this.#lost = undefined;
    if (this.#closed || found.index === current.active.index) return;
    this.#current = this.#open(found);
    // The old host is gone or read-only: its idle connections close now, the checked-out ones
    // when they come back (pool.end() destroys nothing in use).
    const ending = current.pool.end().catch(() => undefined);
    this.#retired.add(ending);
    void ending.then(() => this.#retired.delete(ending));
  }

  /** What a failure to get a connection means for the caller. */
  #connectFailure(error: unknown, operation: string): StorageError {
    if (this.#closed) return new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: POSTGRES_TYPE });
    if (StorageError.isInstance(error)) return error;
    const text = error instanceof Error ? error.message : String(error);
    // The pool's own connect timeout is a missed deadline too: the server did not answer.
    if (/timeout/i.test(text)) return new DeadlineExceeded(`${operation}: connect`, this.#options.connectionTimeoutMs, error);
    const failure = toStorageError(error, `${operation}: connect`);
    // Anything else that stops us getting a connection means the database is unavailable.
    if (failure.code !== StorageErrorCode.INTERNAL) return failure;
    return new StorageError(StorageErrorCode.UNAVAILABLE, `${operation}: connect failed: ${text}`, {
      backend: POSTGRES_TYPE,
      cause: error,
    });
  }
}

/** The error of a new connection to a host that turned out read-only (SQLSTATE 25006, like a refused write). */
function readOnlyHost(host: FoundHost): Error {
  return Object.assign(new Error(`${formatHost(host)} is read-only (a standby, or transaction_read_only is on)`), { code: "25006" });
}

/**
 * Whether an error says the host is gone or no longer writable, so that another may be found: a
 * connection refused, lost or timed out, an admin or crash shutdown, a server starting up or
 * shutting down, or SQLSTATE 25006.
 */
export function isHostFailure(error: unknown): boolean {
  const cause = StorageError.isInstance(error) ? (error.cause ?? error) : error;
  const code = String((cause as { code?: unknown } | null)?.code ?? "");
  if (code === "25006") return true;
  if (isConnectionFailure(cause)) return true;
  const text = cause instanceof Error ? cause.message : "";
  return /timeout exceeded when trying to connect|connection timeout/i.test(text);
}
