/** Where a test connects, in the PostgreSQL backend's own option names. */
export interface PostgresConnection {
  host: string;
  port: number;
  database: string;
  username: string;
  password?: string;
}

/**
 * The test server: 127.0.0.1:5432 as `postgres` (trust) unless PGHOST / PGPORT / PGUSER (and
 * PGPASSWORD) point elsewhere.
 */
export const postgresServer: Readonly<Omit<PostgresConnection, "database">> = Object.freeze({
  host: process.env.PGHOST || "127.0.0.1",
  port: Number(process.env.PGPORT || 5432),
  username: process.env.PGUSER || "postgres",
  ...(process.env.PGPASSWORD ? { password: process.env.PGPASSWORD } : {}),
});
