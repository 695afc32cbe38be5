import type { BackendDefinition } from "@egide/storage-core";
import { PostgresBackend } from "./postgres-backend.js";
import { POSTGRES_TYPE } from "./postgres-errors.js";
import { parsePostgresConfig, type ResolvedPostgresOptions } from "./postgres-options.js";

/** What the server's backend registry loads for `[storage] type = "postgresql"`. */
export const backendDefinition: BackendDefinition<ResolvedPostgresOptions, PostgresBackend> = {
  type: POSTGRES_TYPE,
  packageName: "@egide/storage-postgres",
  parseConfig: (table, env) => parsePostgresConfig(table, env),
  create: (config) => PostgresBackend.open({ ...config, sslRootCert: config.sslRootCert }),
};
