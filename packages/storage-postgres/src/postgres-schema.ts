import type pg from "pg";

/** Quotes an identifier that was already checked to be a plain lower-case name. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Numbered migrations; `egide_schema_version` records which have run. `$S` stands for the
 * quoted schema. Statements are idempotent so a half-migrated schema from an older build still
 * upgrades.
 */
const MIGRATIONS: readonly string[] = [
  // 1: the specification's tables. The key is COLLATE "C" so that ordering and range scans
  // follow UTF-8 byte order whatever the database's locale.
  `
  CREATE TABLE IF NOT EXISTS $S.egide_storage (
    key TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
  );
  CREATE INDEX IF NOT EXISTS idx_storage_prefix ON $S.egide_storage (key text_pattern_ops);
  CREATE TABLE IF NOT EXISTS $S.egide_audit_log (
    id BIGSERIAL PRIMARY KEY,
    timestamp TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    tenant_id UUID,
    operation TEXT NOT NULL,
    path TEXT NOT NULL,
    source_ip INET,
    user_id TEXT,
    request_id UUID,
    success BOOLEAN NOT NULL,
    error_message TEXT,
    metadata JSONB
  );
  CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON $S.egide_audit_log (timestamp);
  CREATE INDEX IF NOT EXISTS idx_audit_tenant ON $S.egide_audit_log (tenant_id, timestamp);
  CREATE INDEX IF NOT EXISTS idx_audit_request ON $S.egide_audit_log (request_id);
  `,
];

/** The schema version this build writes. */
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

/** What {@link checkSchema} found. */
export interface SchemaStatus {
  currentVersion: number;
  expectedVersion: number;
  upToDate: boolean;
}

/**
 * Brings `schema` to {@link POSTGRES_SCHEMA_VERSION} in one transaction. A transaction-scoped
 * advisory lock serialises concurrent migrators (two servers starting at once both succeed,
 * one after the other); being transaction-scoped it is safe behind PgBouncer.
 */
export async function migrateSchema(client: pg.ClientBase, schema: string): Promise<SchemaStatus> {
  const s = quoteIdentifier(schema);
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`egide/schema/${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.egide_schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())`,
    );
    const current = await readVersion(client, schema);
    if (current > POSTGRES_SCHEMA_VERSION) {
      throw new Error(`schema ${schema} is at version ${current}, newer than this build supports (${POSTGRES_SCHEMA_VERSION})`);
    }
    for (let version = current + 1; version <= POSTGRES_SCHEMA_VERSION; version++) {
      await client.query((MIGRATIONS[version - 1] as string).replaceAll("$S", s));
      await client.query(`INSERT INTO ${s}.egide_schema_version (version) VALUES ($1)`, [version]);
    }
    await client.query("COMMIT");
    return { currentVersion: POSTGRES_SCHEMA_VERSION, expectedVersion: POSTGRES_SCHEMA_VERSION, upToDate: true };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/** Reports the schema's version without changing anything. */
export async function checkSchema(client: pg.ClientBase, schema: string): Promise<SchemaStatus> {
  const current = await readVersion(client, schema);
  return { currentVersion: current, expectedVersion: POSTGRES_SCHEMA_VERSION, upToDate: current === POSTGRES_SCHEMA_VERSION };
}

async function readVersion(client: pg.ClientBase, schema: string): Promise<number> {
  const exists = await client.query<{ table: string | null }>("SELECT to_regclass($1) AS table", [
    `${quoteIdentifier(schema)}.egide_schema_version`,
  ]);
  if (exists.rows[0]?.table == null) return 0;
  const result = await client.query<{ version: number | null }>(
    `SELECT max(version) AS version FROM ${quoteIdentifier(schema)}.egide_schema_version`,
  );
  return result.rows[0]?.version ?? 0;
}
