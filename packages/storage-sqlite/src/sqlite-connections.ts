import { AsyncLocalStorage } from "node:async_hooks";
import Database from "better-sqlite3";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { preparePrivateDatabaseFile } from "./private-file.js";
import { ReaderPool } from "./reader-pool.js";
import { SQLITE_TYPE } from "./sqlite-type.js";
import { toStorageError } from "./sqlite-errors.js";
import type { ResolvedSqliteOptions } from "./sqlite-options.js";
import { migrateSqliteSchema } from "./sqlite-schema.js";
import { SqliteConnection } from "./sqlite-connection.js";
import { WriteQueue } from "./write-queue.js";

// Which database's transaction the current async context is inside, to turn a re-entrant call
// (which would wait for itself forever) into an error.
const insideTransaction = new AsyncLocalStorage<SqliteConnections>();
// Transaction callbacks running now, across every database of the process.
let runningTransactions = 0;

/**
 * The connections of one open database, and which of them each piece of work runs on: the
 * writer behind its FIFO {@link WriteQueue}, the reader for plain reads (on a file), and the
 * pool of readers that hold long-lived WAL snapshots. `SqliteBackend` builds its operations on
 * these; keeping them apart keeps the backend to what each operation does.
 */
export class SqliteConnections {
  /** The one connection that writes: every write and read-write transaction runs on it, through {@link queue}. */
  readonly writer: SqliteConnection;
  /** Plain reads outside transactions: the reader connection, or the writer for `:memory:`. */
  readonly reader: SqliteConnection;
  /** Connections for read-only transactions and long scans; only when {@link pinnedSnapshots}. */
  readonly readers: ReaderPool | undefined;
  /** The FIFO lock of the writer connection. */
  readonly queue = new WriteQueue();
  /**
   * Whether long-lived snapshots (read-only transactions, scans) may hold a reader connection:
   * only under WAL. With a rollback journal a reader's SHARED lock blocks every commit, so
   * there such work goes through the writer queue or reads in one statement instead.
   */
  readonly pinnedSnapshots: boolean;
  /** Whether the database is `:memory:`: private to this object, so no other connection can change it. */
  readonly inMemory: boolean;
  readonly #busyTimeoutMs: number;
  #dataVersion: { read: Database.Statement<[], number>; noWait: Database.Statement; wait: Database.Statement } | undefined;
  #closed = false;

  /**
   * Opens (creating if needed) the database and brings its schema up to date; see
   * `SqliteBackend.open` for what happens to the file's permissions. Throws a StorageError.
   */
  constructor(options: ResolvedSqliteOptions) {
    this.inMemory = options.path === ":memory:" || options.path === "";
    this.#busyTimeoutMs = options.busyTimeoutMs;
    this.pinnedSnapshots = !this.inMemory && options.journalMode === "WAL";
    let writer: Database.Database | undefined;
    try {
      // Before SQLite sees the file: it would create it with the umask's permissions.
      if (!this.inMemory) preparePrivateDatabaseFile(options.path);
      writer = new Database(options.path);
      configure(writer, options);
      if (!this.inMemory) {
        const mode = writer.pragma(`journal_mode = ${options.journalMode}`, { simple: true }) as string;
        if (mode.toUpperCase() !== options.journalMode) {
          throw new Error(`could not set journal_mode to ${options.journalMode} (SQLite kept ${mode})`);
        }
      }
      writer.pragma(`synchronous = ${options.synchronous}`);
      migrateSqliteSchema(writer);
      this.writer = new SqliteConnection(writer, true);
      if (this.inMemory) {
        this.reader = this.writer;
      } else {
        const openReader = () => {
          const reader = new Database(options.path, { readonly: true, fileMustExist: true });
          configure(reader, options);
          return reader;
        };
        this.reader = new SqliteConnection(openReader(), false);
        if (this.pinnedSnapshots) this.readers = new ReaderPool(openReader, options.maxReaders);
      }
    } catch (error) {
      writer?.close();
      throw toStorageError(error, `opening ${options.path}`);
    }
  }

  // read and write are the hot path: plain functions (not async) that run the statement at
  // once and wrap the result, so a call costs one promise. `check` runs first and its error
  // (a bad key, say) becomes the rejection.

  /** Runs a read outside any transaction, on the connection that can take it now. */
  read<T>(operation: string, fn: (connection: SqliteConnection) => T, check?: () => void): Promise<T> {
    // On a file a read never waits: it uses the reader connection while a transaction holds
    // the writer; `:memory:` shares the writer's queue so that an open transaction's writes
    // stay invisible until it commits.
    if (this.inMemory) return this.write(operation, fn, check);
    try {
      check?.();
      this.assertOpen();
      // While no transaction holds the writer, it has nothing uncommitted, so it reads exactly
      // what the reader would; and its page cache survives its own commits, whereas every
      // commit invalidates the reader's (a point read then costs 13–30 µs instead of 5).
      return Promise.resolve(fn(this.queue.busy ? this.reader : this.writer));
    } catch (error) {
      return Promise.reject(toStorageError(error, operation));
    }
  }

  /** Runs a write on the writer: at once when the queue is idle, else in turn. */
  write<T>(operation: string, fn: (connection: SqliteConnection) => T, check?: () => void): Promise<T> {
    try {
      check?.();
      this.assertOpen();
      if (!this.queue.busy) return Promise.resolve(fn(this.writer));
      this.assertNotReentrant();
    } catch (error) {
      return Promise.reject(toStorageError(error, operation));
    }
    return this.queue
      .run(() => fn(this.writer))
      .catch((error: unknown) => {
        throw toStorageError(error, operation);
      });
  }

  /**
   * Runs a transaction's callback marked as inside this database's transaction (see
   * {@link assertNotReentrant}). On Node 20 an enabled AsyncLocalStorage puts a hook on every
   * promise the process makes, so the mark is switched off again once no transaction of any
   * database is running: reads between transactions pay nothing for it.
   */
  async runInsideTransaction<T>(fn: () => Promise<T>): Promise<T> {
    runningTransactions += 1;
    try {
      return await insideTransaction.run(this, fn);
    } finally {
      runningTransactions -= 1;
      if (runningTransactions === 0) insideTransaction.disable();
    }
  }

  /** Runs `fn` with a pooled reader held in one read transaction (one WAL snapshot). */
  async withSnapshot<T>(fn: (connection: SqliteConnection) => Promise<T>): Promise<T> {
    const connection = await this.beginSnapshot();
    try {
      return await fn(connection);
    } finally {
      this.endSnapshot(connection);
    }
  }

  /** Takes a pooled reader and pins it to the current WAL snapshot; give it back with {@link endSnapshot}. */
  async beginSnapshot(): Promise<SqliteConnection> {
    const readers = this.readers as ReaderPool;
    const connection = await readers.acquire();
    try {
      this.assertOpen();
      // A deferred transaction takes its snapshot at its first read, so read at once.
      connection.db.exec("BEGIN DEFERRED");
      connection.exists("");
      return connection;
    } catch (error) {
      this.endSnapshot(connection);
      throw toStorageError(error, "begin snapshot");
    }
  }

  /** Ends the snapshot of a reader taken with {@link beginSnapshot} and returns it to the pool. */
  endSnapshot(connection: SqliteConnection): void {
    if (connection.db.inTransaction) connection.db.exec("COMMIT");
    (this.readers as ReaderPool).release(connection);
  }

  /**
   * The writer's `PRAGMA data_version`: it changes whenever another connection (another process,
   * another backend object) commits to the file, and never for the writer's own commits, so the
   * change feed polls it to learn of commits it did not make.
   *
   * It is read at once, even while a transaction of ours holds the writer: the pragma only
   * reads, and inside our transaction no other connection can commit. It never waits for a
   * lock (busy_timeout is 0 for that one read): where another connection blocks readers (an
   * exclusive lock under a rollback journal) it throws SQLITE_BUSY at once, and the caller
   * tries again later, rather than blocking the event loop for busy_timeout on every poll.
   */
  dataVersion(): number {
    const db = this.writer.db;
    if (!db.open) throw new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: SQLITE_TYPE });
    this.#dataVersion ??= {
      read: db.prepare<[], number>("PRAGMA data_version").pluck(),
      noWait: db.prepare("PRAGMA busy_timeout = 0"),
      wait: db.prepare(`PRAGMA busy_timeout = ${Math.round(this.#busyTimeoutMs)}`),
    };
    const { read, noWait, wait } = this.#dataVersion;
    noWait.get();
    try {
      return read.get() as number;
    } finally {
      wait.get();
    }
  }

  /** Throws `CLOSED` once {@link close} has been called. */
  assertOpen(): void {
    if (this.#closed) throw new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: SQLITE_TYPE });
  }

  /** Throws when called from inside this database's transaction callback, where waiting for the writer would never end. */
  assertNotReentrant(): void {
    if (insideTransaction.getStore() === this) {
      throw new StorageError(
        StorageErrorCode.INTERNAL,
        "the backend was called inside its own transaction callback; use the transaction object passed to the callback",
        { backend: SQLITE_TYPE, retryable: false },
      );
    }
  }

  /** Waits for queued work, then closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.queue.drain();
    this.readers?.close();
    if (this.reader !== this.writer) this.reader.db.close();
    this.writer.db.close();
  }
}

/** The per-connection settings, applied to the writer and to every reader alike. */
function configure(db: Database.Database, options: ResolvedSqliteOptions): void {
  db.pragma(`busy_timeout = ${Math.round(options.busyTimeoutMs)}`);
  db.pragma(`cache_size = ${-options.cacheSizeKiB}`);
}
