import { existsSync } from "node:fs";
import { type BackendDefinition, STORAGE_CONTRACT_VERSION } from "@egide/storage-core";
import { SqliteBackend } from "./sqlite-backend.js";
import { parseSqliteConfig, type ResolvedSqliteOptions } from "./sqlite-options.js";
import { SQLITE_TYPE } from "./sqlite-type.js";

/**
 * What the server's backend registry loads for `[storage] type = "sqlite"`.
 */
export const backendDefinition: BackendDefinition<ResolvedSqliteOptions, SqliteBackend> = {
  type: SQLITE_TYPE,
  packageName: "@egide/storage-sqlite",
  contractVersion: STORAGE_CONTRACT_VERSION,
  parseConfig: (table) => parseSqliteConfig(table),
  create: async (config) => SqliteBackend.open(config),
  // Opening a path creates the file: a source that is not there would become an empty one.
  findMissing: (config) =>
    config.path === ":memory:" || existsSync(config.path) ? undefined : `there is no SQLite database at ${config.path}`,
};
