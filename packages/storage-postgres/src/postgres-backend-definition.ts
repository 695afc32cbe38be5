import type { BackendDefinition } from "@egide/storage-core";
import { PostgresBackend } from "./postgres-backend.js";
import { parsePostgresConfig, type ResolvedPostgresOptions } from "./postgres-options.js";
import { POSTGRES_TYPE } from "./postgres-type.js";

/** What the server's backend registry loads for `[storage] type = "postgresql"`. */
export const backendDefinition: BackendDefinition<ResolvedPostgresOptions, PostgresBackend> = {
  type: POSTGRES_TYPE,
  packageName: "@egide/storage-postgres",
  parseConfig: (table, env) => parsePostgresConfig(table, env),
  // Spreading drops the hidden password: pass it on explicitly. The LISTEN target is resolved
  // already; it goes back in the programmatic form (a URL carries its database, user and TLS mode).
  create: (config) => {
    const { listen, ...rest } = config;
    const listenUrl = `postgres://${encodeURIComponent(listen.username)}@${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${listen.port}/${encodeURIComponent(listen.database)}?sslmode=${listen.sslMode}`;
    return PostgresBackend.open({ ...rest, password: config.password, listenUrl });
  },
};
