import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type pg from "pg";
import { POSTGRES_TYPE } from "./postgres-errors.js";

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
 * deadline; a client that saw any error or missed a deadline is destroyed on release, never
 * returned to the pool, since its session state is unknown.
 */
export class ClientLease {
  #broken = false;
  #released = false;

  constructor(readonly client: pg.PoolClient) {
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

  /** Runs one query; rejects after `deadlineMs` (and marks the client broken). */
  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig, deadlineMs: number, operation: string): Promise<pg.QueryResult<R>> {
    const pending = this.client.query<R>(config);
    try {
      return await withDeadline(pending, deadlineMs, operation);
    } catch (error) {
      this.#broken = true;
      throw error;
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
