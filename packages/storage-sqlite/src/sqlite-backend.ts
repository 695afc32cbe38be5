import { randomBytes } from "node:crypto";
import { existsSync, renameSync, rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import {
  StorageError,
  StorageErrorCode,
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
import { createPrivateFile } from "./private-file.js";
import { SqliteAuditStore } from "./sqlite-audit-store.js";
import { SqliteChangeFeed } from "./sqlite-change-feed.js";
import { SQLITE_TYPE } from "./sqlite-type.js";
import { toStorageError } from "./sqlite-errors.js";
import { resolveSqliteOptions, type ResolvedSqliteOptions, type SqliteOptions } from "./sqlite-options.js";
import { SCAN_PAGE_SIZE } from "./sqlite-connection.js";
import { SqliteConnections } from "./sqlite-connections.js";
import { SqliteTransaction } from "./sqlite-transaction.js";

/**
 * Egide's SQLite storage backend (better-sqlite3).
 *
 * One writer connection serves every write and every read-write transaction, behind a FIFO
 * queue; transactions start with `BEGIN IMMEDIATE`, so they take the write lock up front and
 * never fail half-way on a lock upgrade. On a file, plain reads use a separate read-only
 * connection (WAL lets it read while the writer writes), and read-only transactions take a
 * connection of their own from a small pool. `:memory:` has a single connection, so there
 * every operation goes through the queue. The connections and that routing are
 * {@link SqliteConnections}; this class is the operations built on them.
 *
 * Every commit made through this object is published on its change feed with the keys it
 * wrote; commits by other connections to the file are found by polling and published with
 * `keys: null` ({@link SqliteChangeFeed}).
 */
export class SqliteBackend implements AuditingBackend {
  readonly type = SQLITE_TYPE;
  /** The audit log, in this database's `egide_audit_log` table. */
  readonly audit: SqliteAuditStore;
  /** The options in force, defaults applied. */
  readonly options: ResolvedSqliteOptions;

  /** The writer, reader and snapshot readers, and which of them each operation runs on. */
  readonly #connections: SqliteConnections;
  /** The change feed: this object's commits, and other connections' commits seen by polling. */
  readonly #feed: SqliteChangeFeed;
  #closing: Promise<void> | undefined;

  /**
   * Opens (creating if needed) the database and brings its schema up to date.
   *
   * A database file is private to the process's user: a new one is created with mode 0600
   * (its `-wal`, `-shm` and `-journal` files follow), and group and other permissions are
   * removed from an existing one and its companions. When they cannot be removed (the process
   * is not the owner), opening fails with `SqliteFilePermissionError`. A missing directory is
   * not created.
   */
  static open(options: SqliteOptions): SqliteBackend {
    return new SqliteBackend(resolveSqliteOptions(options));
  }

  private constructor(options: ResolvedSqliteOptions) {
    this.options = options;
    this.#connections = new SqliteConnections(options);
    const connections = this.#connections;
    this.#feed = new SqliteChangeFeed({
      // :memory: is private to this object: every commit to it is one of ours.
      readVersion: connections.inMemory ? undefined : () => connections.dataVersion(),
      pollIntervalMs: options.changePollIntervalMs,
      failureGraceMs: options.busyTimeoutMs,
    });
    this.audit = new SqliteAuditStore({
      read: (fn) => this.#connections.read("audit query", (c) => fn(c.db)),
      write: (fn) => this.#connections.write("audit append", (c) => fn(c.db)),
    });
  }

  get(key: string): Promise<Buffer | null> {
    return this.#connections.read(
      "get",
      (c) => c.get(key),
      () => validateKey(key, SQLITE_TYPE),
    );
  }

  /**
   * The values at `keys`, in the same order (`null` where absent; a key may be given more than
   * once), read by one statement: one consistent snapshot, whatever the number of keys. Every
   * key is checked as `get` checks it.
   */
  getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    return this.#connections.read(
      "getMany",
      (c) => c.getMany(keys),
      () => {
        for (const key of keys) validateKey(key, SQLITE_TYPE);
      },
    );
  }

  exists(key: string): Promise<boolean> {
    return this.#connections.read(
      "exists",
      (c) => c.exists(key),
      () => validateKey(key, SQLITE_TYPE),
    );
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#connections.write(
      "put",
      (c) => {
        c.put(key, value);
        this.#feed.committed([key]);
      },
      () => {
        validateKey(key, SQLITE_TYPE);
        validateValue(value, this.options.maxValueBytes, SQLITE_TYPE);
      },
    );
  }

  delete(key: string): Promise<void> {
    return this.#connections.write(
      "delete",
      (c) => {
        c.delete(key);
        this.#feed.committed([key]);
      },
      () => validateKey(key, SQLITE_TYPE),
    );
  }

  list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    return this.#connections.read(
      "list",
      (c) => c.list(prefix, after, limit),
      () => validateListPage(prefix, after, limit, SQLITE_TYPE),
    );
  }

  /**
   * Every key under `prefix` with its value, in key order, as one consistent snapshot.
   *
   * On a file the scan holds a pooled reader connection in one read transaction and reads it in
   * pages of 256 (keyset pagination), so memory stays flat and writers are not held up; the
   * connection is released when the loop ends or breaks. An iterator that is abandoned without
   * finishing or `return()` keeps its connection. On `:memory:` (whose data is in memory
   * already) and under a rollback journal (where a long read would block every commit) the
   * subtree is read in one statement.
   */
  async *scan(prefix: string): AsyncGenerator<ScanEntry> {
    validatePrefix(prefix, SQLITE_TYPE);
    this.#connections.assertOpen();
    const before = prefixSuccessor(prefix);
    if (!this.#connections.pinnedSnapshots) {
      // One statement is one snapshot, and nothing in this process can interleave with it.
      yield* await this.#connections.read("scan", (c) => c.scanAll(prefix, before));
      return;
    }
    // A subtree that fits in one page is read by one statement, which is a snapshot already;
    // only a longer scan pins a pooled reader (and starts over on it).
    const firstPage = await this.#connections.read("scan", (c) => c.scanPage(prefix, true, before));
    if (firstPage.length < SCAN_PAGE_SIZE) {
      yield* firstPage;
      return;
    }
    const connection = await this.#connections.beginSnapshot();
    try {
      let from = prefix;
      let inclusive = true;
      for (;;) {
        this.#connections.assertOpen();
        let page: ScanEntry[];
        try {
          page = connection.scanPage(from, inclusive, before);
        } catch (error) {
          throw toStorageError(error, "scan");
        }
        for (const entry of page) yield entry;
        if (page.length < SCAN_PAGE_SIZE) return;
        from = (page[page.length - 1] as ScanEntry).key;
        inclusive = false;
      }
    } finally {
      this.#connections.endSnapshot(connection);
    }
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#connections.assertOpen();
    this.#connections.assertNotReentrant();
    const readOnly = options.readOnly === true;
    if (readOnly && this.#connections.readers) return this.#readOnlyTransaction(fn);
    // Within this process the queue serialises transactions; BUSY can only come from another
    // process holding the file's write lock past busy_timeout, and is worth another try.
    return withRetries(
      () =>
        this.#connections.queue.runAsync(async () => {
          const db = this.#connections.writer.db;
          const tx = new SqliteTransaction(this.#connections.writer, readOnly, this.options.maxValueBytes, this.audit);
          try {
            db.exec(readOnly ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE");
          } catch (error) {
            throw toStorageError(error, "begin");
          }
          let result: T;
          try {
            result = await this.#connections.runInsideTransaction(() => fn(tx));
          } catch (error) {
            // The callback's own error reaches the caller unchanged.
            tx.close();
            if (db.inTransaction) db.exec("ROLLBACK");
            throw error;
          }
          tx.close();
          try {
            db.exec("COMMIT");
          } catch (error) {
            if (db.inTransaction) db.exec("ROLLBACK");
            throw toStorageError(error, "commit");
          }
          // Committed: published now, before the caller's promise resolves and before the
          // queue lets the next write in.
          if (tx.changes.written) this.#feed.committed(tx.changes.keys);
          return result;
        }),
      { shouldRetry: (error) => StorageError.isInstance(error, StorageErrorCode.CONFLICT) },
    );
  }

  /** Measures a trivial query; runs even while a transaction holds the writer. */
  async health(): Promise<HealthStatus> {
    const started = performance.now();
    try {
      this.#connections.assertOpen();
      this.#connections.reader.db.prepare("SELECT 1").pluck().get();
      return { status: "healthy", latencyMs: performance.now() - started };
    } catch (error) {
      return { status: "unhealthy", latencyMs: performance.now() - started, error: toStorageError(error, "health").message };
    }
  }

  /**
   * Writes a consistent copy of the live database to `destinationPath` with SQLite's online
   * backup API, while reads and writes go on. The copy is written beside the destination and
   * renamed into place only when complete, so a failed backup never leaves a partial file.
   * The copy, like the database, is readable by its owner only (mode 0600).
   */
  async backup(destinationPath: string): Promise<void> {
    this.#connections.assertOpen();
    if (existsSync(destinationPath)) {
      throw new StorageError(StorageErrorCode.INTERNAL, `backup destination ${destinationPath} already exists`, {
        backend: SQLITE_TYPE,
        retryable: false,
      });
    }
    const temporary = `${destinationPath}.partial-${randomBytes(6).toString("hex")}`;
    try {
      // SQLite copies into this empty file (an empty file is an empty database) and its
      // journal takes the file's mode; left to SQLite, both would get the umask's permissions.
      createPrivateFile(temporary);
      if (this.#connections.pinnedSnapshots) {
        // A reader pinned to one WAL snapshot: writers go on, and the copy is that snapshot
        // (without the pin SQLite restarts the copy whenever another connection commits).
        await this.#connections.withSnapshot((reader) => reader.db.backup(temporary));
      } else {
        // Copy through the writer with the queue held, so no transaction of ours is open
        // (uncommitted) meanwhile.
        await this.#connections.queue.runAsync(() => this.#connections.writer.db.backup(temporary));
      }
      renameSync(temporary, destinationPath);
    } catch (error) {
      rmSync(temporary, { force: true });
      throw toStorageError(error, "backup");
    }
  }

  /**
   * The settings SQLite actually applied on the writer connection, for diagnostics and for
   * checking that configuration reached the database.
   */
  pragmas(): { journalMode: string; synchronous: number; cacheSize: number; busyTimeoutMs: number; schemaVersion: number } {
    this.#connections.assertOpen();
    const db = this.#connections.writer.db;
    const read = (name: string) => db.pragma(name, { simple: true });
    return {
      journalMode: String(read("journal_mode")).toUpperCase(),
      synchronous: read("synchronous") as number,
      cacheSize: read("cache_size") as number,
      busyTimeoutMs: read("busy_timeout") as number,
      schemaVersion: read("user_version") as number,
    };
  }

  /**
   * Subscribes `listener` to the change feed: the keys of every commit made through this backend
   * object (puts, deletes, read-write transactions that wrote; not audit rows), delivered before
   * the write resolves, and `keys: null` for each commit by another connection to the same file
   * (another process, another backend object), found by polling every `changePollIntervalMs`
   * while anyone is subscribed. The feed is live from the start; `close()` ends it. After
   * `close()` the subscription is never live.
   */
  subscribeChanges(listener: ChangeFeedListener): ChangeFeedSubscription {
    return this.#feed.subscribe(listener);
  }

  /**
   * Waits for queued work, then closes every connection and ends the change feed (subscribers
   * are told it is not live). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#connections.close();
      } finally {
        // After the queued writes, so that their changes are still delivered.
        this.#feed.close();
      }
    })();
    return this.#closing;
  }

  async #readOnlyTransaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#connections.withSnapshot(async (connection) => {
      const tx = new SqliteTransaction(connection, true, this.options.maxValueBytes, this.audit);
      try {
        return await fn(tx);
      } finally {
        tx.close();
      }
    });
  }
}
