import type { BackendDefinition } from "@egide/storage-core";
import { PostgresBackend } from "./postgres-backend.js";
import { parsePostgresConfig, type ResolvedPostgresOptions } from "./postgres-options.js";
import { POSTGRES_TYPE } from "./postgres-type.js";

/** What the server's backend registry loads for `[storage] type = "postgresql"`. */
export const backendDefinition: BackendDefinition<ResolvedPostgresOptions, PostgresBackend> = {
  type: POSTGRES_TYPE,
  packageName: "@egide/storage-postgres",
  parseConfig: (table, env) => parsePostgresConfig(table, env),
  // Spreading drops the hidden password: pass it on explicitly.
  create: (config) => PostgresBackend.open({ ...config, password: config.password }),
};
