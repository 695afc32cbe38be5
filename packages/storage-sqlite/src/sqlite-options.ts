import { ConfigReader, DEFAULT_MAX_VALUE_BYTES } from "@egide/storage-core";

/**
 * SQLite journal modes Egide accepts. `OFF` and `MEMORY` are refused: a process killed
 * mid-commit leaves a corrupt database behind (seen in the crash test with `MEMORY`).
 */
export const SQLITE_JOURNAL_MODES = ["WAL", "DELETE", "TRUNCATE", "PERSIST"] as const;
/** SQLite `synchronous` levels. */
export const SQLITE_SYNCHRONOUS_LEVELS = ["OFF", "NORMAL", "FULL", "EXTRA"] as const;

const MIN_CHANGE_POLL_MS = 1;
const MAX_CHANGE_POLL_MS = 10_000;

/** A journal mode of {@link SQLITE_JOURNAL_MODES}. */
export type SqliteJournalMode = (typeof SQLITE_JOURNAL_MODES)[number];
/** A level of {@link SQLITE_SYNCHRONOUS_LEVELS}. */
export type SqliteSynchronous = (typeof SQLITE_SYNCHRONOUS_LEVELS)[number];

/** Options of the SQLite backend, in the programmatic (camelCase) form. */
export interface SqliteOptions {
  /** Database file, or ":memory:" for a private in-memory database. */
  path: string;
  /** Default "WAL" (ignored for ":memory:", which always journals in memory). */
  journalMode?: SqliteJournalMode;
  /** Default "NORMAL": with WAL, a committed write survives a killed process. */
  synchronous?: SqliteSynchronous;
  /** Page cache per connection in KiB (default 10000, about 10 MB). */
  cacheSizeKiB?: number;
  /** How long to wait for a lock held by another process, in ms (default 5000). */
  busyTimeoutMs?: number;
  /** Largest value accepted, in bytes (default 1 MiB). */
  maxValueBytes?: number;
  /** Most connections used at once for read-only transactions on a file (default 4). */
  maxReaders?: number;
  /**
   * How often, in ms, the change feed checks a database file for commits made by other
   * connections (other processes, other backend objects), while it has subscribers: from 1 to
   * 10000 (default 10). Unused for ":memory:".
   */
  changePollIntervalMs?: number;
}

/** {@link SqliteOptions} with every default applied. */
export type ResolvedSqliteOptions = Required<SqliteOptions>;

/** Fills in the defaults and checks ranges of programmatic options. */
export function resolveSqliteOptions(options: SqliteOptions): ResolvedSqliteOptions {
  // Reuse the configuration checks so both entry points reject the same values.
  return parseSqliteConfig(
    {
      path: options.path,
      journal_mode: options.journalMode,
      synchronous: options.synchronous,
      cache_size: options.cacheSizeKiB,
      busy_timeout: options.busyTimeoutMs,
      max_value_bytes: options.maxValueBytes,
      max_readers: options.maxReaders,
      change_poll_interval: options.changePollIntervalMs,
    },
    "sqlite",
  );
}

/**
 * Parses the `[storage.sqlite]` table of the configuration file:
 *
 * ```toml
 * [storage.sqlite]
 * path = "/var/lib/egide/egide.db"   # or ":memory:"
 * journal_mode = "WAL"
 * synchronous = "NORMAL"
 * cache_size = 10000                 # KiB
 * busy_timeout = "5s"
 * change_poll_interval = "10ms"      # change feed: how often to look for other processes' commits
 * ```
 *
 * Unknown options and bad values are `ConfigError`s naming the option.
 */
export function parseSqliteConfig(table: unknown, path = "storage.sqlite"): ResolvedSqliteOptions {
  const config = new ConfigReader(stripUndefined(table), path);
  const file = config.string("path");
  if (file === undefined || file.trim() === "") throw config.error("path", 'is required: a database file, or ":memory:"');
  if (file.includes("\0")) throw config.error("path", "must not contain NUL");
  const options: ResolvedSqliteOptions = {
    path: file,
    journalMode: config.oneOf("journal_mode", SQLITE_JOURNAL_MODES, "WAL"),
    synchronous: config.oneOf("synchronous", SQLITE_SYNCHRONOUS_LEVELS, "NORMAL"),
    cacheSizeKiB: config.integer("cache_size", 10000, { min: 64, max: 64 * 1024 * 1024 }),
    busyTimeoutMs: config.duration("busy_timeout", "5s"),
    maxValueBytes: config.integer("max_value_bytes", DEFAULT_MAX_VALUE_BYTES, { min: 1, max: 512 * 1024 * 1024 }),
    maxReaders: config.integer("max_readers", 4, { min: 1, max: 64 }),
    changePollIntervalMs: config.duration("change_poll_interval", "10ms"),
  };
  if (options.busyTimeoutMs > 2 ** 31 - 1) throw config.error("busy_timeout", "is too long");
  // Below 1 ms a timer fires no faster; above 10 s the feed would lag too far behind other processes to be useful.
  if (options.changePollIntervalMs < MIN_CHANGE_POLL_MS || options.changePollIntervalMs > MAX_CHANGE_POLL_MS) {
    throw config.error("change_poll_interval", `must be between 1ms and 10s, got ${options.changePollIntervalMs}ms`);
  }
  config.finish();
  return options;
}

function stripUndefined(table: unknown): unknown {
  if (typeof table !== "object" || table === null || Array.isArray(table)) return table;
  return Object.fromEntries(Object.entries(table).filter(([, value]) => value !== undefined));
}
