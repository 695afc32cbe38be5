import { type BackendDefinition, STORAGE_CONTRACT_VERSION } from "@egide/storage-core";
import { PostgresBackend } from "./postgres-backend.js";
import { parsePostgresConfig, type ResolvedPostgresOptions } from "./postgres-options.js";
import { POSTGRES_TYPE } from "./postgres-type.js";

/** What the server's backend registry loads for `[storage] type = "postgresql"`. */
export const backendDefinition: BackendDefinition<ResolvedPostgresOptions, PostgresBackend> = {
  type: POSTGRES_TYPE,
  packageName: "@egide/storage-postgres",
  contractVersion: STORAGE_CONTRACT_VERSION,
  parseConfig: (table, env) => parsePostgresConfig(table, env),
  // The options are resolved already (the password hidden in them, the LISTEN target and whether
  // it follows the writable host settled): opened as they are.
  create: (config) => PostgresBackend.openResolved(config),
};
