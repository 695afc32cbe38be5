import { destroySocket, withDeadline } from "./client-lease.js";
import { connectClient } from "./postgres-connection.js";
import { toStorageError } from "./postgres-errors.js";
import type { ResolvedPostgresOptions } from "./postgres-options.js";
import type { PgSsl } from "./postgres-ssl.js";
import type pg from "pg";

/**
 * Opens one client outside any pool (walking the TLS attempts of `ssl_mode`), runs `fn` within
 * the operation deadline, and closes the client; on any failure its socket is destroyed, so a
 * server that stopped answering cannot hang the caller. Returns the TLS choice that worked.
 */
export async function withOneClient<T>(
  options: ResolvedPostgresOptions,
  operation: string,
  fn: (client: pg.Client, schema: string) => Promise<T>,
): Promise<{ result: T; ssl: PgSsl }> {
  let connected: Awaited<ReturnType<typeof connectClient>>;
  try {
    connected = await withDeadline(connectClient(options), options.connectionTimeoutMs + 1000, `${operation}: connect`);
  } catch (error) {
    throw toStorageError(error, `${operation}: connecting to ${options.host}:${options.port}`);
  }
  try {
    const result = await withDeadline(fn(connected.client, options.schema), options.operationTimeoutMs, operation);
    await connected.client.end().catch(() => undefined);
    return { result, ssl: connected.ssl };
  } catch (error) {
    destroySocket(connected.client);
    throw toStorageError(error, operation);
  }
}
