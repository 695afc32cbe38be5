import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type pg from "pg";
import { POSTGRES_TYPE } from "./postgres-type.js";

const ERROR_LISTENER = Symbol("egide error listener");

/** Thrown when the server does not answer within a call's deadline. */
export class DeadlineExceeded extends StorageError {
  constructor(operation: string, ms: number, cause?: unknown) {
    super(StorageErrorCode.UNAVAILABLE, `${operation}: no answer from PostgreSQL within ${ms} ms`, { backend: POSTGRES_TYPE, cause });
    this.name = "DeadlineExceeded";
  }
}

/**
 * A client checked out of the pool for one call or one transaction. Every query runs against a
 * deadline; a client that saw an error or missed a deadline is destroyed on release, never
 * returned to the pool, since its session state is unknown.
 */
export class ClientLease {
  #broken = false;
  #released = false;

  /**
   * @param client the checked-out client
   * @param deadlineAt when set (epoch ms), no query of this lease runs past it: one deadline
   *   covers a whole call
   * @param onError told of every failed query (before it is rethrown): with several hosts the
   *   pool looks for another one when the error says this one is gone or read-only
   */
  constructor(
    readonly client: pg.PoolClient,
    readonly deadlineAt?: number,
    readonly onError?: (error: unknown) => void,
  ) {
    // A checked-out client whose connection dies between queries emits 'error'; without a
    // listener that would crash the process. The next query fails and we destroy the client.
    const tagged = client as pg.PoolClient & { [ERROR_LISTENER]?: true };
    if (!tagged[ERROR_LISTENER]) {
      tagged[ERROR_LISTENER] = true;
      client.on("error", () => undefined);
    }
  }

  /** Marks the client as unfit for reuse. */
  markBroken(): void {
    this.#broken = true;
  }

  /**
   * Declares the session clean again after an error the server reported and a successful
   * ROLLBACK (a serialization conflict), so a retry does not pay for a new connection.
   */
  markRecovered(): void {
    this.#broken = false;
  }

  /**
   * Runs one query. Past the deadline the connection's socket is destroyed, which fails the
   * query at once whatever the server is doing; the failure is a {@link DeadlineExceeded}.
   */
  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig, deadlineMs: number, operation: string): Promise<pg.QueryResult<R>> {
    const remaining = this.deadlineAt === undefined ? deadlineMs : Math.min(deadlineMs, this.deadlineAt - Date.now());
    if (remaining <= 0) {
      this.#broken = true;
      throw new DeadlineExceeded(operation, deadlineMs);
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#broken = true;
      destroySocket(this.client);
    }, remaining);
    try {
      return await this.client.query<R>(config);
    } catch (error) {
      this.#broken = true;
      this.onError?.(error);
      throw timedOut ? new DeadlineExceeded(operation, Math.round(remaining), error) : error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Returns the client to the pool, or destroys it when it is broken. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.client.release(this.#broken ? true : undefined);
  }
}

/** Settles like `promise`, or rejects with {@link DeadlineExceeded} after `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, operation: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      // The late outcome has nobody waiting for it; keep it from becoming unhandled.
      promise.catch(() => undefined);
      reject(new DeadlineExceeded(operation, ms));
    }, ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Closes the client's socket now; pg then fails its active query with a connection error. */
export function destroySocket(client: pg.ClientBase): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  if (stream) stream.destroy();
  else void (client as pg.Client).end().catch(() => undefined);
}
