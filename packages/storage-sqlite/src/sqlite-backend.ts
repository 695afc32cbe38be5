import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { existsSync, renameSync, rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
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
  type HealthStatus,
  type ScanEntry,
  type Transaction,
  type TransactionOptions,
} from "@egide/storage-core";
import { createPrivateFile, preparePrivateDatabaseFile } from "./private-file.js";
import { ReaderPool } from "./reader-pool.js";
import { SqliteAuditStore } from "./sqlite-audit-store.js";
import { SQLITE_TYPE } from "./sqlite-type.js";
import { toStorageError } from "./sqlite-errors.js";
import { resolveSqliteOptions, type ResolvedSqliteOptions, type SqliteOptions } from "./sqlite-options.js";
import { migrateSqliteSchema } from "./sqlite-schema.js";
import { SCAN_PAGE_SIZE, SqliteConnection } from "./sqlite-connection.js";
import { SqliteTransaction } from "./sqlite-transaction.js";
import { WriteQueue } from "./write-queue.js";

// Which backend's transaction the current async context is inside, to turn a re-entrant call
// (which would wait for itself forever) into an error.
const insideTransaction = new AsyncLocalStorage<SqliteBackend>();

/**
 * Egide's SQLite storage backend (better-sqlite3).
 *
 * One writer connection serves every write and every read-write transaction, behind a FIFO
 * {@link WriteQueue}; transactions start with `BEGIN IMMEDIATE`, so they take the write lock
 * up front and never fail half-way on a lock upgrade. On a file, plain reads use a separate
 * read-only connection (WAL lets it read while the writer writes), and read-only transactions
 * take a connection of their own from a small pool. `:memory:` has a single connection, so
 * there every operation goes through the queue.
 */
export class SqliteBackend implements AuditingBackend {
  readonly type = SQLITE_TYPE;
  /** The audit log, in this database's `egide_audit_log` table. */
  readonly audit: SqliteAuditStore;
  /** The options in force, defaults applied. */
  readonly options: ResolvedSqliteOptions;

  readonly #writer: SqliteConnection;
  /** Plain reads outside transactions: the reader connection, or the writer for `:memory:`. */
  readonly #reader: SqliteConnection;
  readonly #readers: ReaderPool | undefined;
  readonly #queue = new WriteQueue();
  readonly #memory: boolean;
  /**
   * Whether long-lived snapshots (read-only transactions, scans) may hold a reader connection:
   * only under WAL. With a rollback journal a reader's SHARED lock blocks every commit, so
   * there such work goes through the writer queue or reads in one statement instead.
   */
  readonly #pinnedSnapshots: boolean;
  #closed = false;

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
    this.#memory = options.path === ":memory:" || options.path === "";
    this.#pinnedSnapshots = !this.#memory && options.journalMode === "WAL";
    let writer: Database.Database | undefined;
    try {
      // Before SQLite sees the file: it would create it with the umask's permissions.
      if (!this.#memory) preparePrivateDatabaseFile(options.path);
      writer = new Database(options.path);
      this.#configure(writer);
      if (!this.#memory) {
        const mode = writer.pragma(`journal_mode = ${options.journalMode}`, { simple: true }) as string;
        if (mode.toUpperCase() !== options.journalMode) {
          throw new Error(`could not set journal_mode to ${options.journalMode} (SQLite kept ${mode})`);
        }
      }
      writer.pragma(`synchronous = ${options.synchronous}`);
      migrateSqliteSchema(writer);
      this.#writer = new SqliteConnection(writer, true);
      if (this.#memory) {
        this.#reader = this.#writer;
      } else {
        const openReader = () => {
          const reader = new Database(options.path, { readonly: true, fileMustExist: true });
          this.#configure(reader);
          return reader;
        };
        this.#reader = new SqliteConnection(openReader(), false);
        if (this.#pinnedSnapshots) this.#readers = new ReaderPool(openReader, options.maxReaders);
      }
    } catch (error) {
      writer?.close();
      throw toStorageError(error, `opening ${options.path}`);
    }
    this.audit = new SqliteAuditStore({
      read: (fn) => this.#read("audit query", (c) => fn(c.db)),
      write: (fn) => this.#write("audit append", (c) => fn(c.db)),
    });
  }

  get(key: string): Promise<Buffer | null> {
    return this.#read(
      "get",
      (c) => c.get(key),
      () => validateKey(key, SQLITE_TYPE),
    );
  }

  exists(key: string): Promise<boolean> {
    return this.#read(
      "exists",
      (c) => c.exists(key),
      () => validateKey(key, SQLITE_TYPE),
    );
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#write(
      "put",
      (c) => c.put(key, value),
      () => {
        validateKey(key, SQLITE_TYPE);
        validateValue(value, this.options.maxValueBytes, SQLITE_TYPE);
      },
    );
  }

  delete(key: string): Promise<void> {
    return this.#write(
      "delete",
      (c) => c.delete(key),
      () => validateKey(key, SQLITE_TYPE),
    );
  }

  list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    return this.#read(
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
    this.#assertOpen();
    const before = prefixSuccessor(prefix);
    if (!this.#pinnedSnapshots) {
      // One statement is one snapshot, and nothing in this process can interleave with it.
      yield* await this.#read("scan", (c) => c.scanAll(prefix, before));
      return;
    }
    // A subtree that fits in one page is read by one statement, which is a snapshot already;
    // only a longer scan pins a pooled reader (and starts over on it).
    const firstPage = await this.#read("scan", (c) => c.scanPage(prefix, true, before));
    if (firstPage.length < SCAN_PAGE_SIZE) {
      yield* firstPage;
      return;
    }
    const connection = await this.#beginSnapshot();
    try {
      let from = prefix;
      let inclusive = true;
      for (;;) {
        this.#assertOpen();
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
      this.#endSnapshot(connection);
    }
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#assertOpen();
    this.#assertNotReentrant();
    const readOnly = options.readOnly === true;
    if (readOnly && this.#readers) return this.#readOnlyTransaction(fn);
    // Within this process the queue serialises transactions; BUSY can only come from another
    // process holding the file's write lock past busy_timeout, and is worth another try.
    return withRetries(
      () =>
        this.#queue.runAsync(async () => {
          const db = this.#writer.db;
          const tx = new SqliteTransaction(this.#writer, readOnly, this.options.maxValueBytes, this.audit);
          try {
            db.exec(readOnly ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE");
          } catch (error) {
            throw toStorageError(error, "begin");
          }
          let result: T;
          try {
            result = await insideTransaction.run(this, () => fn(tx));
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
          return result;
        }),
      { shouldRetry: (error) => StorageError.isInstance(error, StorageErrorCode.CONFLICT) },
    );
  }

  /** Measures a trivial query; runs even while a transaction holds the writer. */
  async health(): Promise<HealthStatus> {
    const started = performance.now();
    try {
      this.#assertOpen();
      this.#reader.db.prepare("SELECT 1").pluck().get();
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
    this.#assertOpen();
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
      if (this.#pinnedSnapshots) {
        // A reader pinned to one WAL snapshot: writers go on, and the copy is that snapshot
        // (without the pin SQLite restarts the copy whenever another connection commits).
        await this.#withSnapshot((reader) => reader.db.backup(temporary));
      } else {
        // Copy through the writer with the queue held, so no transaction of ours is open
        // (uncommitted) meanwhile.
        await this.#queue.runAsync(() => this.#writer.db.backup(temporary));
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
    this.#assertOpen();
    const db = this.#writer.db;
    const read = (name: string) => db.pragma(name, { simple: true });
    return {
      journalMode: String(read("journal_mode")).toUpperCase(),
      synchronous: read("synchronous") as number,
      cacheSize: read("cache_size") as number,
      busyTimeoutMs: read("busy_timeout") as number,
      schemaVersion: read("user_version") as number,
    };
  }

  /** Waits for queued work, then closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.drain();
    this.#readers?.close();
    if (this.#reader !== this.#writer) this.#reader.db.close();
    this.#writer.db.close();
  }

  // #read and #write are the hot path: plain functions (not async) that run the statement at
  // once and wrap the result, so a call costs one promise. `check` runs first and its error
  // (a bad key, say) becomes the rejection.
  #read<T>(operation: string, fn: (connection: SqliteConnection) => T, check?: () => void): Promise<T> {
    // On a file a read never waits: it uses the reader connection while a transaction holds
    // the writer; `:memory:` shares the writer's queue so that an open transaction's writes
    // stay invisible until it commits.
    if (this.#memory) return this.#write(operation, fn, check);
    try {
      check?.();
      this.#assertOpen();
      // While no transaction holds the writer, it has nothing uncommitted, so it reads exactly
      // what the reader would; and its page cache survives its own commits, whereas every
      // commit invalidates the reader's (a point read then costs 13–30 µs instead of 5).
      return Promise.resolve(fn(this.#queue.busy ? this.#reader : this.#writer));
    } catch (error) {
      return Promise.reject(toStorageError(error, operation));
    }
  }

  #write<T>(operation: string, fn: (connection: SqliteConnection) => T, check?: () => void): Promise<T> {
    try {
      check?.();
      this.#assertOpen();
      if (!this.#queue.busy) return Promise.resolve(fn(this.#writer));
      this.#assertNotReentrant();
    } catch (error) {
      return Promise.reject(toStorageError(error, operation));
    }
    return this.#queue
      .run(() => fn(this.#writer))
      .catch((error: unknown) => {
        throw toStorageError(error, operation);
      });
  }

  async #readOnlyTransaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#withSnapshot(async (connection) => {
      const tx = new SqliteTransaction(connection, true, this.options.maxValueBytes, this.audit);
      try {
        return await fn(tx);
      } finally {
        tx.close();
      }
    });
  }

  /** Runs `fn` with a pooled reader held in one read transaction (one WAL snapshot). */
  async #withSnapshot<T>(fn: (connection: SqliteConnection) => Promise<T>): Promise<T> {
    const connection = await this.#beginSnapshot();
    try {
      return await fn(connection);
    } finally {
      this.#endSnapshot(connection);
    }
  }

  /** Takes a pooled reader and pins it to the current WAL snapshot. */
  async #beginSnapshot(): Promise<SqliteConnection> {
    const readers = this.#readers as ReaderPool;
    const connection = await readers.acquire();
    try {
      this.#assertOpen();
      // A deferred transaction takes its snapshot at its first read, so read at once.
      connection.db.exec("BEGIN DEFERRED");
      connection.exists("");
      return connection;
    } catch (error) {
      this.#endSnapshot(connection);
      throw toStorageError(error, "begin snapshot");
    }
  }

  #endSnapshot(connection: SqliteConnection): void {
    if (connection.db.inTransaction) connection.db.exec("COMMIT");
    (this.#readers as ReaderPool).release(connection);
  }

  #configure(db: Database.Database): void {
    db.pragma(`busy_timeout = ${Math.round(this.options.busyTimeoutMs)}`);
    db.pragma(`cache_size = ${-this.options.cacheSizeKiB}`);
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: SQLITE_TYPE });
  }

  #assertNotReentrant(): void {
    if (insideTransaction.getStore() === this) {
      throw new StorageError(
        StorageErrorCode.INTERNAL,
        "the backend was called inside its own transaction callback; use the transaction object passed to the callback",
        { backend: SQLITE_TYPE, retryable: false },
      );
    }
  }
}
