import { toStorageError } from "./postgres-errors.js";
import { connectClient } from "./postgres-connection.js";
import { resolvePostgresOptions, type PostgresOptions } from "./postgres-options.js";
import { checkSchema, migrateSchema, type SchemaStatus } from "./postgres-schema.js";

/**
 * Migrates the configured schema to this build's version (idempotent; concurrent callers both
 * succeed). For `egide operator migrate`-style tooling; `PostgresBackend.open` does it too.
 */
export async function migratePostgresSchema(options: PostgresOptions): Promise<SchemaStatus> {
  return withClient(options, "migrating the schema", (client, schema) => migrateSchema(client, schema));
}

/** Reports whether the configured schema is current, without changing anything. */
export async function checkPostgresSchema(options: PostgresOptions): Promise<SchemaStatus> {
  return withClient(options, "checking the schema", (client, schema) => checkSchema(client, schema));
}

async function withClient<T>(
  options: PostgresOptions,
  operation: string,
  fn: (client: Awaited<ReturnType<typeof connectClient>>["client"], schema: string) => Promise<T>,
): Promise<T> {
  const resolved = resolvePostgresOptions(options);
  let connected: Awaited<ReturnType<typeof connectClient>> | undefined;
  try {
    connected = await connectClient(resolved);
    return await fn(connected.client, resolved.schema);
  } catch (error) {
    throw toStorageError(error, operation);
  } finally {
    await connected?.client.end().catch(() => undefined);
  }
}
