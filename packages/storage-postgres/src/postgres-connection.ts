import pg from "pg";
import type { ResolvedPostgresOptions } from "./postgres-options.js";
import { isSslNegotiationFailure, sslAttempts, type PgSsl } from "./postgres-ssl.js";

/** The `application_name` of Egide's connections, so operators can find them in pg_stat_activity. */
export const APPLICATION_NAME = "egide";

/**
 * The `application_name` of the change feed's LISTEN connection, apart from the pool's so that
 * operators (and tests) can tell the long-lived listener from the pooled connections.
 */
export const CHANGE_FEED_APPLICATION_NAME = "egide-listen";

/** The `pg` client settings shared by the pool and one-off clients, for one TLS choice. */
export function clientConfig(options: ResolvedPostgresOptions, ssl: PgSsl, applicationName = APPLICATION_NAME): pg.ClientConfig {
  return {
    host: options.host,
    port: options.port,
    database: options.database,
    user: options.username,
    password: options.password,
    ssl,
    application_name: applicationName,
    connectionTimeoutMillis: options.connectionTimeoutMs,
    // Sent as a startup parameter; behind PgBouncer list it in ignore_startup_parameters and set
    // a role or database default instead (transactions also SET LOCAL it).
    ...(options.statementTimeoutMs > 0 ? { statement_timeout: options.statementTimeoutMs } : {}),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

/**
 * Opens one client, walking the TLS attempts of the configured `ssl_mode` (libpq's allow and
 * prefer fall back between plain text and TLS). Returns the client and the TLS choice that
 * worked, which the pool then uses for every connection.
 */
export async function connectClient(options: ResolvedPostgresOptions): Promise<{ client: pg.Client; ssl: PgSsl }> {
  const attempts = sslAttempts(options);
  let lastError: unknown;
  for (const [index, ssl] of attempts.entries()) {
    const client = new pg.Client(clientConfig(options, ssl));
    // A connection error after connect() settles would otherwise be an unhandled 'error'.
    client.on("error", () => undefined);
    try {
      await client.connect();
      return { client, ssl };
    } catch (error) {
      lastError = error;
      await client.end().catch(() => undefined);
      if (index === attempts.length - 1 || !isSslNegotiationFailure(error)) throw error;
    }
  }
  throw lastError;
}
