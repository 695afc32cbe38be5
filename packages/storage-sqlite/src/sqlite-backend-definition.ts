import type { BackendDefinition } from "@egide/storage-core";
import { SqliteBackend } from "./sqlite-backend.js";
import { parseSqliteConfig, type ResolvedSqliteOptions } from "./sqlite-options.js";
import { SQLITE_TYPE } from "./sqlite-type.js";

/**
 * What the server's backend registry loads for `[storage] type = "sqlite"`.
 */
export const backendDefinition: BackendDefinition<ResolvedSqliteOptions, SqliteBackend> = {
  type: SQLITE_TYPE,
  packageName: "@egide/storage-sqlite",
  parseConfig: (table) => parseSqliteConfig(table),
  create: async (config) => SqliteBackend.open(config),
};
