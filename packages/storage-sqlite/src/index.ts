export { SqliteBackend } from "./sqlite-backend.js";
export { SqliteAuditStore } from "./sqlite-audit-store.js";
export { backendDefinition } from "./sqlite-backend-definition.js";
export { SQLITE_TYPE } from "./sqlite-type.js";
export {
  parseSqliteConfig,
  resolveSqliteOptions,
  SQLITE_JOURNAL_MODES,
  SQLITE_SYNCHRONOUS_LEVELS,
} from "./sqlite-options.js";
export type { SqliteOptions, ResolvedSqliteOptions, SqliteJournalMode, SqliteSynchronous } from "./sqlite-options.js";
export { SQLITE_SCHEMA_VERSION } from "./sqlite-schema.js";
export { SqliteFilePermissionError } from "./sqlite-errors.js";
