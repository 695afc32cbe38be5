import { randomBytes } from "node:crypto";
import pg from "pg";
import { postgresServer } from "./postgres-server.js";
import type { PostgresConnection } from "./postgres-server.js";

/** The command that starts the machine's PostgreSQL cluster (see TOOLCHAIN.md). */
export const START_POSTGRES_COMMAND = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

export { postgresServer } from "./postgres-server.js";
export type { PostgresConnection } from "./postgres-server.js";

/** Quotes an SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A short random suffix that keeps names unique across files and runs. */
export function randomSuffix(): string {
  return randomBytes(4).toString("hex");
}

/**
 * Runs `fn` with a raw `pg` client connected to `database`. An unreachable server is a loud
 * failure saying how to start it: these tests are never skipped, because a skipped backend test
 * looks like a passing one.
 */
export async function withClient<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: postgresServer.host,
    port: postgresServer.port,
    user: postgresServer.username,
    password: postgresServer.password,
    database,
    connectionTimeoutMillis: 5000,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    await client.end().catch(() => undefined);
    throw new Error(
      `PostgreSQL is required by these tests (they are never skipped) but is not reachable at ` +
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

/** A database created for one test file. */
export interface TestDatabase {
  /** `egide_t_<label>_<random>`. */
  name: string;
  connection: PostgresConnection;
  /** Drops a schema of this database (if it exists) with everything in it. */
  dropSchema(schema: string): Promise<void>;
  /** Drops the database, disconnecting whoever is still connected. Idempotent. */
  drop(): Promise<void>;
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

/** Creates a uniquely named database `egide_t_<label>_<random>`; drop it in `afterAll`. */
export async function createTestDatabase(label: string, options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const name = `egide_t_${label
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .slice(0, 30)}_${randomSuffix()}`;
  const locale = options.icuLocale ? ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${options.icuLocale.replaceAll("'", "''")}'` : "";
  await withClient("postgres", async (client) => {
    // 55006: someone is connected to the template for a moment (parallel test files); retry.
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
    async dropSchema(schema) {
      await withClient(name, (client) => client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`));
    },
    async drop() {
      if (dropped) return;
      dropped = true;
      await withClient("postgres", (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`));
    },
  };
}

export { TcpProxy } from "./postgres-tcp-proxy.js";
export type { TcpProxyOptions } from "./postgres-tcp-proxy.js";
export type { TcpProxyMode } from "@egide/test-network";
export { startPgBouncer } from "./pgbouncer.js";
export type { PgBouncer, PgBouncerOptions } from "./pgbouncer.js";
export { freeLoopbackPort } from "@egide/test-network";
export { startThrowawayCluster, postgresBinDir } from "./throwaway-cluster.js";
export type { ThrowawayCluster, ThrowawayClusterOptions, ClusterStopMode } from "./throwaway-cluster.js";
