import { resolvePostgresOptions, type PostgresOptions } from "./postgres-options.js";
import { checkSchema, migrateSchema, type SchemaStatus } from "./postgres-schema.js";
import { withOneClient } from "./with-one-client.js";

/**
 * Migrates the configured schema to this build's version (idempotent; concurrent callers both
 * succeed). For `egide operator migrate`-style tooling; `PostgresBackend.open` does it too.
 */
export async function migratePostgresSchema(options: PostgresOptions): Promise<SchemaStatus> {
  return (await withOneClient(resolvePostgresOptions(options), "migrating the schema", migrateSchema)).result;
}

/** Reports whether the configured schema is current, without changing anything. */
export async function checkPostgresSchema(options: PostgresOptions): Promise<SchemaStatus> {
  return (await withOneClient(resolvePostgresOptions(options), "checking the schema", checkSchema)).result;
}
