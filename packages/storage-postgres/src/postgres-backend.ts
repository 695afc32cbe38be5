import { performance } from "node:perf_hooks";
import type pg from "pg";
import {
  StorageError,
  StorageErrorCode,
  ChildCollector,
  listChildren,
  listStart,
  prefixSuccessor,
  validateKey,
  validateListPage,
  validatePrefix,
  validateValue,
  withRetries,
  type AuditingBackend,
  type ChangeFeedListener,
  type ChangeFeedSubscription,
  type HealthStatus,
  type ScanEntry,
  type Transaction,
  type TransactionOptions,
} from "@egide/storage-core";
import { asBuffer } from "./as-buffer.js";
import { inKeyOrder } from "./in-key-order.js";
import { type ClientLease, withDeadline } from "./client-lease.js";
import { ClientPool, type PoolStats } from "./client-pool.js";
import { PostgresAuditStore } from "./postgres-audit-store.js";
import { PostgresChangeFeed, type ChangeFeedStatus } from "./postgres-change-feed.js";
import { withOneClient } from "./with-one-client.js";
import { findWritableHost, optionsForHost } from "./find-writable-host.js";
import type { ActiveHost } from "./postgres-hosts.js";
import type { PgSsl } from "./postgres-ssl.js";
import { POSTGRES_TYPE } from "./postgres-type.js";
import { isRetryableConnectionLoss, toStorageError } from "./postgres-errors.js";
import { resolvePostgresOptions, type PostgresOptions, type ResolvedPostgresOptions } from "./postgres-options.js";
import { migrateSchema } from "./postgres-schema.js";
import { PostgresSql } from "./postgres-sql.js";
import { PostgresTransaction } from "./postgres-transaction.js";

/** Rows per page of a scan. */
export const POSTGRES_SCAN_PAGE_SIZE = 256;
/** Largest batch of the recursive listing walk, in keys. */
const WALK_MAX_BATCH = 256;
/** Longest a health probe may take, in ms. */
const HEALTH_TIMEOUT_MS = 2000;

/**
 * Egide's PostgreSQL storage backend (pg).
 *
 * Every call checks a client out of a `pg.Pool`, runs against a deadline, and destroys the
 * client if anything went wrong. Read-write transactions are SERIALIZABLE and retried on
 * serialization failures and deadlocks; read-only transactions, scans and multi-probe listings
 * run in a REPEATABLE READ READ ONLY snapshot. No session state is used (tables are
 * schema-qualified, settings are `SET LOCAL`, named statements can be switched off), so it
 * works behind PgBouncer in transaction mode.
 *
 * With the change feed (`changeFeed`, on by default) every write also NOTIFYs the keys it
 * changed, in the same round trip, and `subscribeChanges` LISTENs on a dedicated connection
 * (`listenHost`/`listenPort`/`listenUrl`: it must be a direct one, not PgBouncer in transaction
 * mode). With the feed off, `subscribeChanges` and `changeFeedStatus` are absent.
 */
export class PostgresBackend implements AuditingBackend {
  readonly type = POSTGRES_TYPE;
  /** The audit log, in this schema's `egide_audit_log` table. */
  readonly audit: PostgresAuditStore;
  /** The options in force, defaults applied (the password included: never log this object). */
  readonly options: ResolvedPostgresOptions;
  /**
   * The change feed (see `StorageBackend.subscribeChanges`): the keys committed through any
   * backend object on this schema. Present only when `changeFeed` is on. Own properties set in
   * the constructor (`declare`: no class field), so that with the feed off the capability is
   * absent, not an undefined member.
   */
  declare readonly subscribeChanges?: (listener: ChangeFeedListener) => ChangeFeedSubscription;
  /** The change feed's state, for health checks and metrics; present only with the change feed. */
  declare readonly changeFeedStatus?: () => ChangeFeedStatus;

  readonly #sql: PostgresSql;
  /** The pool, and the checkout, deadline and retry rules of every call. */
  readonly #clients: ClientPool;
  readonly #feed: PostgresChangeFeed | undefined;

  /**
   * Connects (settling the TLS mode), migrates the schema, and opens the pool.
   * Rejects with a StorageError (`UNAVAILABLE` for an unreachable server).
   */
  static async open(options: PostgresOptions): Promise<PostgresBackend> {
    return PostgresBackend.openResolved(resolvePostgresOptions(options));
  }

  /**
   * {@link open} with options resolved already (`parsePostgresConfig`'s or
   * `resolvePostgresOptions`' result, as the server's backend registry passes them). With
   * several hosts (or `target_session_attrs = read-write`) it first finds the writable one,
   * and migrates and opens the pool there.
   */
  static async openResolved(resolved: ResolvedPostgresOptions): Promise<PostgresBackend> {
    const failover = resolved.hosts.length > 1 || resolved.targetSessionAttrs === "read-write";
    const found = failover ? await findWritableHost(resolved) : undefined;
    const target = found ? optionsForHost(resolved, found) : resolved;
    const { result: database, ssl } = await withOneClient(target, "migrating the schema", async (client, schema) => {
      await migrateSchema(client, schema);
      if (!resolved.changeFeed) return undefined;
      // The database the writes (and their NOTIFYs) reach, by its real name even behind a
      // PgBouncer alias: the change feed's LISTEN connection must reach the same one.
      return (await client.query<{ name: string }>("SELECT current_database() AS name")).rows[0]?.name;
    });
    return new PostgresBackend(resolved, ssl, database, found);
  }

  private constructor(options: ResolvedPostgresOptions, ssl: PgSsl, database: string | undefined, host: ActiveHost | undefined) {
    this.options = options;
    // The feed's probes run on the pool (read lazily: it is opened just below, and probes start with the first subscriber).
    const poolProbe = (text: string, timeoutMs: number) =>
      this.#clients.withClient("change feed probe", (lease) => lease.query({ text }, timeoutMs, "change feed probe")).then(() => undefined);
    // With several hosts the LISTEN connection goes where the pool writes, unless listen_host says otherwise.
    const follow = options.hosts.length > 1 && options.listenFollowsWritable ? () => this.#clients.activeHost() : undefined;
    this.#feed = options.changeFeed ? new PostgresChangeFeed(options, database, poolProbe, follow) : undefined;
    this.#sql = new PostgresSql(options.schema, this.#feed?.channel);
    this.#clients = new ClientPool(options, ssl, host);
    const feed = this.#feed;
    if (feed) {
      Object.defineProperties(this, {
        subscribeChanges: { value: (listener: ChangeFeedListener) => feed.subscribe(listener) },
        changeFeedStatus: { value: () => feed.status() },
      });
    }
    this.audit = new PostgresAuditStore(
      options.schema,
      (operation, fn) => this.#clients.withClient(operation, fn),
      options.operationTimeoutMs,
    );
  }

  get(key: string): Promise<Buffer | null> {
    return this.#clients
      .point<{ value: Buffer }>("get", () => validateKey(key, POSTGRES_TYPE), this.#sql.get, [key])
      .then((result) => result.rows[0]?.value ?? null);
  }

  /**
   * The values at `keys`, in order (`null` where absent; a key may be given more than once), in
   * one statement; no round trip for no keys. Every key is checked as `get` checks it.
   */
  getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    const check = () => {
      for (const key of keys) validateKey(key, POSTGRES_TYPE);
    };
    if (keys.length === 0) {
      try {
        this.#clients.assertOpen();
      } catch (error) {
        return Promise.reject(error);
      }
      return Promise.resolve([]);
    }
    return this.#clients
      .point<{ key: string; value: Buffer }>("getMany", check, this.#sql.getMany, [[...new Set(keys)]])
      .then((result) => inKeyOrder(keys, result.rows));
  }

  exists(key: string): Promise<boolean> {
    return this.#clients
      .point("exists", () => validateKey(key, POSTGRES_TYPE), this.#sql.exists, [key])
      .then((result) => result.rowCount === 1);
  }

  put(key: string, value: Uint8Array): Promise<void> {
    const check = () => {
      validateKey(key, POSTGRES_TYPE);
      validateValue(value, this.options.maxValueBytes, POSTGRES_TYPE);
    };
    return this.#write("put", check, key, this.#sql.putNotifying, [key, value instanceof Uint8Array ? asBuffer(value) : value]);
  }

  delete(key: string): Promise<void> {
    return this.#write("delete", () => validateKey(key, POSTGRES_TYPE), key, this.#sql.deleteNotifying, [key]);
  }

  list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    validateListPage(prefix, after, limit, POSTGRES_TYPE);
    this.#clients.assertOpen();
    return this.#clients.withClient("list", (lease) => this.listWith(lease, prefix, after, limit));
  }

  /**
   * Every key under `prefix` with its value, in key order, as one REPEATABLE READ snapshot read
   * in pages of 256 on one connection. The connection is released when the loop ends or
   * breaks; an iterator abandoned without either keeps it.
   */
  async *scan(prefix: string): AsyncGenerator<ScanEntry> {
    validatePrefix(prefix, POSTGRES_TYPE);
    this.#clients.assertOpen();
    const before = prefixSuccessor(prefix);
    const lease = await this.#clients.lease("scan");
    let ok = false;
    try {
      await lease.query({ text: this.#beginSql(true) }, this.options.operationTimeoutMs, "scan");
      let from = prefix;
      let inclusive = true;
      for (;;) {
        this.#clients.assertOpen();
        const text = this.#sql.page[`${inclusive}${before !== null}`] as string;
        const values = before === null ? [from, POSTGRES_SCAN_PAGE_SIZE] : [from, before, POSTGRES_SCAN_PAGE_SIZE];
        const page = await this.query<{ key: string; value: Buffer }>(lease, text, values, "scan");
        for (const row of page.rows) yield { key: row.key, value: row.value };
        if (page.rows.length < POSTGRES_SCAN_PAGE_SIZE) break;
        from = (page.rows[page.rows.length - 1] as { key: string }).key;
        inclusive = false;
      }
      await lease.query({ text: "COMMIT" }, this.options.operationTimeoutMs, "scan");
      ok = true;
    } catch (error) {
      throw toStorageError(error, "scan");
    } finally {
      // A scan left early (break) still has its snapshot open: end it, or destroy the client.
      if (!ok) await this.#rollback(lease);
      lease.release();
    }
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#clients.assertOpen();
    const readOnly = options.readOnly === true;
    return withRetries(
      async () => {
        const lease = await this.#clients.lease("transaction");
        const tx = new PostgresTransaction(this, lease, readOnly);
        try {
          try {
            await lease.query({ text: this.#beginSql(readOnly) }, this.options.operationTimeoutMs, "begin");
          } catch (error) {
            throw toStorageError(error, "begin");
          }
          let result: T;
          try {
            result = await fn(tx);
          } catch (error) {
            // The callback's own error reaches the caller unchanged.
            tx.close();
            const rolledBack = await this.#rollback(lease);
            // After a serialization conflict and a clean ROLLBACK the session is idle: keep the
            // connection, so retries under contention do not reconnect every time.
            if (rolledBack && StorageError.isInstance(error, StorageErrorCode.CONFLICT)) lease.markRecovered();
            throw error;
          }
          tx.close();
          // With the change feed, a transaction that wrote keys sends its NOTIFY with the COMMIT.
          const feed = this.#feed;
          const changed = feed ? tx.changedKeys() : [];
          const committedAt = Date.now();
          const commit =
            feed && changed.length > 0
              ? this.#sql.notifyAndCommit(lease.client.escapeLiteral(feed.payload(changed, committedAt)))
              : "COMMIT";
          try {
            await lease.query({ text: commit }, this.options.operationTimeoutMs, "commit");
          } catch (error) {
            const failure = toStorageError(error, "commit");
            // A serialization failure at COMMIT ends the transaction (rolled back, session
            // idle): safe to retry on the same connection. A lost connection leaves the outcome
            // unknown: never retry that (the callback may not be idempotent).
            if (failure.code === StorageErrorCode.CONFLICT) lease.markRecovered();
            if (failure.code === StorageErrorCode.UNAVAILABLE) {
              // It may have committed, and its notification may come back to this object's own
              // LISTEN, which ignores it: tell the local subscribers now (a needless invalidation
              // costs little; a missed one leaves a stale cache).
              if (changed.length > 0) feed?.committed(changed, committedAt);
              throw new StorageError(StorageErrorCode.UNAVAILABLE, `commit outcome unknown: ${failure.message}`, {
                backend: POSTGRES_TYPE,
                cause: error,
                retryable: false,
              });
            }
            throw failure;
          }
          // Delivered before the transaction resolves, so the writer's next read never races it.
          if (changed.length > 0) feed?.committed(changed, committedAt);
          return result;
        } finally {
          tx.close();
          lease.release();
        }
      },
      {
        attempts: this.options.transactionAttempts,
        maxDelayMs: 500,
        // Serialization conflicts are retried up to the configured attempts; a lost connection
        // (before COMMIT was sent) gets one fresh try, and so does a write refused by a host that
        // turned read-only when there may be another; nothing is retried after the deadline.
        budgetMs: this.options.operationTimeoutMs,
        shouldRetry: (error, attempt) =>
          StorageError.isInstance(error) &&
          (error.code === StorageErrorCode.CONFLICT ||
            (attempt === 1 && (isRetryableConnectionLoss(error) || this.#clients.movesOnReadOnly(error)))),
      },
    );
  }

  /** A time-boxed `SELECT 1` with its latency; never throws and never hangs. */
  async health(): Promise<HealthStatus> {
    const started = performance.now();
    try {
      this.#clients.assertOpen();
      const timeout = Math.min(HEALTH_TIMEOUT_MS, this.options.operationTimeoutMs);
      await withDeadline(
        this.#clients.withClient("health", (lease) => lease.query({ text: "SELECT 1" }, timeout, "health")),
        timeout,
        "health",
      );
      return { status: "healthy", latencyMs: performance.now() - started };
    } catch (error) {
      return { status: "unhealthy", latencyMs: performance.now() - started, error: toStorageError(error, "health").message };
    }
  }

  /** Connection counts of the pool. */
  poolStats(): PoolStats {
    return this.#clients.stats();
  }

  /**
   * The server the pool connects to now: its host, port and position in the configured list
   * (`index`, from 0, of `hostCount`). Undefined while no writable host is known (during a
   * failover, after a search found none). With one host it is always that host.
   */
  activeHost(): ActiveHost | undefined {
    return this.#clients.activeHost();
  }

  /**
   * Waits for checked-out clients to come back, then closes every connection. Idempotent. The
   * change feed stops at once: its LISTEN connection closes and subscribers are told `live(false)`.
   */
  close(): Promise<void> {
    this.#feed?.close();
    return this.#clients.close();
  }

  /**
   * A single-key write (`put`, `delete`): one statement, which NOTIFYs too with the change feed.
   * The local subscribers hear of it before the returned promise settles: on success, and on a
   * failure that leaves the outcome unknown (the connection died after the statement was sent).
   */
  #write(operation: string, check: () => void, key: string, text: string, values: unknown[]): Promise<void> {
    const feed = this.#feed;
    if (!feed) return this.#clients.point(operation, check, text, values).then(() => undefined);
    try {
      check();
    } catch (error) {
      return Promise.reject(toStorageError(error, operation));
    }
    const keys = [key];
    const committedAt = Date.now();
    return this.#clients
      .point(operation, () => undefined, text, [...values, feed.payload(keys, committedAt)])
      .then(
        () => feed.committed(keys, committedAt),
        (error: unknown) => {
          if (StorageError.isInstance(error, StorageErrorCode.UNAVAILABLE)) feed.committed(keys, committedAt);
          throw error;
        },
      );
  }

  /** @internal Runs a storage statement on a lease, named once it is used often enough. */
  query<R extends pg.QueryResultRow>(lease: ClientLease, text: string, values: unknown[], operation: string): Promise<pg.QueryResult<R>> {
    return this.#clients.query<R>(lease, text, values, operation);
  }

  /**
   * @internal A whole listing on `lease`, in one statement either way. A plain range read of up
   * to `list_probe_keys` (256) keys answers most listings (a folder of leaves, a short folder) in one round trip;
   * when it cannot (more keys, or folders holding subtrees) the recursive walk does, with one
   * index probe per child (see postgres-sql.ts).
   */
  async listWith(lease: ClientLease, prefix: string, after: string, limit: number): Promise<string[]> {
    const probeKeys = this.options.listProbeKeys;
    const scan = listChildren(prefix, after, limit, { first: probeKeys, initial: probeKeys, max: probeKeys });
    const probe = scan.next();
    if (probe.done) return probe.value;
    const { from, inclusive, before } = probe.value;
    const values = before === null ? [from, probe.value.limit] : [from, before, probe.value.limit];
    const result = await this.query<{ key: string }>(lease, this.#sql.seek[`${inclusive}${before !== null}`] as string, values, "list");
    const answered = scan.next(result.rows.map((row) => row.key));
    if (answered.done) return answered.value;
    return this.#walk(lease, prefix, after, limit);
  }

  /** The listing by the batched recursive walk: one statement (see postgres-sql.ts). */
  async #walk(lease: ClientLease, prefix: string, after: string, limit: number): Promise<string[]> {
    const start = listStart(prefix, after);
    // The walk's first step takes keys >= $1: an exclusive start is the next possible key.
    const from = start.inclusive ? start.from : `${start.from}\u0001`;
    const before = prefixSuccessor(prefix);
    // A folder costs at most one batch of keys, so this many keys always hold `limit` entries
    // (plus the prefix itself and a folder holding `after`, which give none).
    const keys = limit > 0 ? (limit + 2) * WALK_MAX_BATCH : null;
    const values: unknown[] = [from, prefix, keys, 1, WALK_MAX_BATCH];
    if (before !== null) values.push(before);
    const result = await this.query<{ key: string }>(lease, this.#sql.list[`${before !== null}`] as string, values, "list");
    const collector = new ChildCollector(prefix, after, limit);
    for (const { key } of result.rows) if (!collector.add(key)) break;
    return collector.entries;
  }

  /** @internal The SQL texts of this backend's schema. */
  get sql(): PostgresSql {
    return this.#sql;
  }

  #beginSql(readOnly: boolean): string {
    const isolation = readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN ISOLATION LEVEL SERIALIZABLE";
    const timeout =
      this.options.statementTimeoutMs > 0 ? `; SET LOCAL statement_timeout = ${Math.round(this.options.statementTimeoutMs)}` : "";
    return isolation + timeout;
  }

  /** Rolls back the open transaction on `lease`; a client that cannot is destroyed instead. */
  async #rollback(lease: ClientLease): Promise<boolean> {
    try {
      await lease.query({ text: "ROLLBACK" }, Math.min(this.options.operationTimeoutMs, 5000), "rollback");
      return true;
    } catch {
      lease.markBroken();
      return false;
    }
  }
}
