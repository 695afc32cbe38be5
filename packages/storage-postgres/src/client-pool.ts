import pg from "pg";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { ClientLease, DeadlineExceeded } from "./client-lease.js";
import { clientConfig } from "./postgres-connection.js";
import { isRetryableConnectionLoss, toStorageError } from "./postgres-errors.js";
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
 * The `pg.Pool` behind one backend: hands clients out as {@link ClientLease}s against a
 * deadline, runs storage statements on them (named once used often enough), and says what a
 * failure to get a client means. `PostgresBackend` builds its operations on this; keeping it
 * apart keeps the backend to what each operation does.
 */
export class ClientPool {
  readonly #options: ResolvedPostgresOptions;
  readonly #pool: pg.Pool;
  readonly #prepared: PreparedStatements;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** Opens the pool with the TLS choice that worked for the first connection. */
  constructor(options: ResolvedPostgresOptions, ssl: PgSsl) {
    this.#options = options;
    this.#prepared = new PreparedStatements(options.prepareThreshold);
    this.#pool = new pg.Pool({
      ...clientConfig(options, ssl),
      min: options.poolMin,
      max: options.poolMax,
      idleTimeoutMillis: options.idleTimeoutMs,
    });
    // An idle client whose connection dies is reported here; the pool drops it. Without a
    // listener the 'error' event would crash the process.
    this.#pool.on("error", () => undefined);
  }

  /** Connection counts of the pool. */
  stats(): PoolStats {
    const total = this.#pool.totalCount;
    const idle = this.#pool.idleCount;
    return { total, idle, active: total - idle, waiting: this.#pool.waitingCount };
  }

  /** Waits for checked-out clients to come back, then closes every connection. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#pool.end().catch(() => undefined);
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
      if (!isRetryableConnectionLoss(error)) throw error;
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
      return new ClientLease(await this.#pool.connect(), deadlineAt);
    } catch (error) {
      throw this.#connectFailure(error, operation);
    }
  }

  /** Throws `CLOSED` once {@link close} has been called. */
  assertOpen(): void {
    if (this.#closed) throw new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: POSTGRES_TYPE });
  }

  async #statement<R extends pg.QueryResultRow>(operation: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    const deadlineAt = Date.now() + this.#options.operationTimeoutMs;
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw this.#connectFailure(error, operation);
    }
    const lease = new ClientLease(client, deadlineAt);
    try {
      return await this.query<R>(lease, text, values, operation);
    } catch (error) {
      throw toStorageError(error, operation);
    } finally {
      lease.release();
    }
  }

  /** What a failure to get a connection means for the caller. */
  #connectFailure(error: unknown, operation: string): StorageError {
    if (this.#closed) return new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: POSTGRES_TYPE });
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
