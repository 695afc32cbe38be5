import type Database from "better-sqlite3";

/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
 * Every statement is idempotent so a half-applied database from an older build still upgrades.
 */
const MIGRATIONS: readonly string[] = [
  // 1: the specification's tables. Timestamps are Unix milliseconds.
  `
  CREATE TABLE IF NOT EXISTS egide_storage (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS idx_storage_prefix ON egide_storage (key);
  CREATE TABLE IF NOT EXISTS egide_audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp INTEGER NOT NULL,
    tenant_id TEXT,
    operation TEXT NOT NULL,
    path TEXT NOT NULL,
    source_ip TEXT,
    user_id TEXT,
    request_id TEXT,
    success INTEGER NOT NULL CHECK (success IN (0, 1)),
    error_message TEXT,
    metadata TEXT
  );
  CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON egide_audit_log (timestamp);
  CREATE INDEX IF NOT EXISTS idx_audit_tenant ON egide_audit_log (tenant_id, timestamp);
  CREATE INDEX IF NOT EXISTS idx_audit_request ON egide_audit_log (request_id);
  `,
];

/** The schema version this build writes. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the database to {@link SQLITE_SCHEMA_VERSION} inside one `BEGIN IMMEDIATE`
 * transaction, so two processes opening the same file migrate one after the other.
 * Refuses a database written by a newer build.
 */
export function migrateSqliteSchema(db: Database.Database): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const current = db.pragma("user_version", { simple: true }) as number;
    if (current > SQLITE_SCHEMA_VERSION) {
      throw new Error(`database schema version ${current} is newer than this build supports (${SQLITE_SCHEMA_VERSION})`);
    }
    for (let version = current; version < SQLITE_SCHEMA_VERSION; version++) db.exec(MIGRATIONS[version] as string);
    if (current !== SQLITE_SCHEMA_VERSION) db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (error) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw error;
  }
}
