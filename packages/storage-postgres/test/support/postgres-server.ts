import { randomBytes } from "node:crypto";
import pg from "pg";
import { PostgresBackend } from "../../src/index.js";
import type { PostgresOptions } from "../../src/index.js";

/** Where a test connects: the backend's own connection option names. */
export interface PostgresConnection {
  host: string;
  port: number;
  database: string;
  username: string;
  password?: string;
}

/** The command that starts the machine's PostgreSQL cluster (see TOOLCHAIN.md). */
export const START_POSTGRES_COMMAND = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

/**
 * The machine's PostgreSQL, as the tests reach it: 127.0.0.1:5432 as `postgres` with trust
 * authentication unless PGHOST / PGPORT / PGUSER (and PGPASSWORD) say otherwise, so a
 * developer can point the tests at another server without editing them.
 */
export const postgresServer: Readonly<Omit<PostgresConnection, "database">> = Object.freeze({
  host: process.env.PGHOST || "127.0.0.1",
  port: Number(process.env.PGPORT || 5432),
  username: process.env.PGUSER || "postgres",
  ...(process.env.PGPASSWORD ? { password: process.env.PGPASSWORD } : {}),
});

/** A database created for one test file. */
export interface TestDatabase {
  /** The database's name (`egide_t_<label>_<random>`). */
  name: string;
  /** How to reach it directly (not through any proxy). */
  connection: PostgresConnection;
  /** Drops it, disconnecting whoever is still connected. */
  drop(): Promise<void>;
}

/**
 * Runs `fn` with a raw `pg` client connected to `database` on the test server. A server that
 * cannot be reached is a loud failure that says how to start it: these tests are never
 * skipped, because a skipped backend test looks like a passing one.
 */
export async function withAdminClient<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: postgresServer.host,
    port: postgresServer.port,
    user: postgresServer.username,
    password: postgresServer.password,
    database,
    // A server that is down should fail the file in seconds, not hang it.
    connectionTimeoutMillis: 5000,
  });
  // An admin connection that dies while idle (e.g. a fault test terminating backends) must not
  // crash the test process with an unhandled 'error' event.
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    await client.end().catch(() => undefined);
    throw new Error(
      `PostgreSQL is required by the storage-postgres tests but is not reachable at ` +
        `${postgresServer.host}:${postgresServer.port} as "${postgresServer.username}" ` +
        `(${(cause as Error)?.message ?? String(cause)}). Start it with: ${START_POSTGRES_COMMAND} ` +
        `(install it first with \`apt-get install -y postgresql\` if /etc/postgresql is empty), ` +
        `or point PGHOST/PGPORT/PGUSER at a running server.`,
      { cause },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Quotes an SQL identifier (names here are generated, but quoting keeps that assumption local). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A short random suffix that keeps names unique across parallel test files and runs. */
function randomSuffix(): string {
  return randomBytes(4).toString("hex");
}

/** Options of {@link createTestDatabase}. */
export interface TestDatabaseOptions {
  /**
   * An ICU locale (e.g. "en-US") for the database's default collation. The machine's databases
   * use C.UTF-8, which already sorts in byte order and so would hide a missing COLLATE "C";
   * a linguistic default makes byte-order tests able to fail.
   */
  icuLocale?: string;
}

/**
 * Creates a uniquely named database for one test file, so files can run in parallel without
 * seeing each other's tables. Drop it in `afterAll`.
 */
export async function createTestDatabase(label: string, options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const safeLabel = label.toLowerCase().replace(/[^a-z0-9_]+/g, "_").slice(0, 30);
  const name = `egide_t_${safeLabel}_${randomSuffix()}`;
  const locale = options.icuLocale
    ? ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${options.icuLocale.replaceAll("'", "''")}'`
    : "";
  await withAdminClient("postgres", async (client) => {
    // CREATE DATABASE fails with 55006 ("source database is being accessed by other users")
    // while anyone else is connected to the template, which parallel test files can be for
    // a moment: retry briefly instead of failing a whole file on that race.
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(`CREATE DATABASE ${quoteIdentifier(name)}${locale}`);
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== "55006" || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  });
  let dropped = false;
  return {
    name,
    connection: { ...postgresServer, database: name },
    async drop() {
      if (dropped) return;
      dropped = true;
      // FORCE: a backend a failed test never closed must not keep the database alive.
      await withAdminClient("postgres", (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`));
    },
  };
}

/** Options of {@link freshSchemaFactory}. */
export interface FreshSchemaOptions {
  /**
   * Where schemas are dropped, when the backend connects through a proxy (PgBouncer):
   * administrative statements go straight to PostgreSQL. Default: `connection`.
   */
  admin?: PostgresConnection;
  /** Further backend options (e.g. `prepareThreshold: 0`). */
  backend?: Partial<PostgresOptions>;
}

/** Hands out backends, each in a schema of its own inside one test database. */
export interface FreshSchemaFactory {
  /** Opens a backend on a new, empty schema `s_<counter>_<random>` (the backend creates it). */
  create(): Promise<PostgresBackend>;
  /** Closes the backend (it may already be closed) and drops its schema. */
  destroy(backend: PostgresBackend): Promise<void>;
  /** The schema a backend from {@link create} uses. */
  schemaOf(backend: PostgresBackend): string | undefined;
  /** Destroys every backend still open (for `afterAll`, after a failed test). */
  destroyAll(): Promise<void>;
}

/**
 * A factory of fresh, empty backends for the conformance suite and other per-test needs. Pools
 * stay small (0 to 4 connections) so parallel test files do not exhaust `max_connections`.
 */
export function freshSchemaFactory(connection: PostgresConnection, options: FreshSchemaOptions = {}): FreshSchemaFactory {
  const admin = options.admin ?? connection;
  const schemas = new Map<PostgresBackend, string>();
  let counter = 0;

  const destroy = async (backend: PostgresBackend): Promise<void> => {
    const schema = schemas.get(backend);
    schemas.delete(backend);
    await backend.close();
    if (schema === undefined) return;
    await withAdminClient(admin.database, (client) => client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`));
  };

  return {
    async create() {
      const schema = `s_${++counter}_${randomSuffix()}`;
      const backend = await PostgresBackend.open({ ...connection, schema, poolMin: 0, poolMax: 4, ...options.backend });
      schemas.set(backend, schema);
      return backend;
    },
    destroy,
    schemaOf: (backend) => schemas.get(backend),
    async destroyAll() {
      for (const backend of [...schemas.keys()]) await destroy(backend);
    },
  };
}
