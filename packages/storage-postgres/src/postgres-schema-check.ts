import { findWritableHost, optionsForHost } from "./find-writable-host.js";
import { resolvePostgresOptions, type PostgresOptions, type ResolvedPostgresOptions } from "./postgres-options.js";
import { checkSchema, migrateSchema, type SchemaStatus } from "./postgres-schema.js";
import { withOneClient } from "./with-one-client.js";

/**
 * Migrates the configured schema to this build's version (idempotent; concurrent callers both
 * succeed). For `egide operator migrate`-style tooling; `PostgresBackend.open` does it too.
 * With several hosts it runs on the writable one, as the backend would.
 */
export async function migratePostgresSchema(options: PostgresOptions): Promise<SchemaStatus> {
  return (await withOneClient(await targetOf(resolvePostgresOptions(options)), "migrating the schema", migrateSchema)).result;
}

/** Reports whether the configured schema is current, without changing anything (on the host the backend would use). */
export async function checkPostgresSchema(options: PostgresOptions): Promise<SchemaStatus> {
  return (await withOneClient(await targetOf(resolvePostgresOptions(options)), "checking the schema", checkSchema)).result;
}

/** The options aimed at the host `PostgresBackend.open` would use. */
async function targetOf(options: ResolvedPostgresOptions): Promise<ResolvedPostgresOptions> {
  if (options.hosts.length === 1 && options.targetSessionAttrs === "any") return options;
  return optionsForHost(options, await findWritableHost(options));
}
