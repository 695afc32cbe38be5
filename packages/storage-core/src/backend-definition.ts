import type { AuditStore } from "./audit-store.js";
import type { StorageBackend } from "./storage-backend.js";

/**
 * What a storage adapter package exports as `backendDefinition`, so that a configuration's
 * `[storage] type = "…"` can be turned into a running backend without the server importing
 * every adapter.
 */
export interface BackendDefinition<TConfig = unknown, TBackend extends StorageBackend = StorageBackend> {
  /** The `type` value that selects this backend ("sqlite", "postgresql"). */
  readonly type: string;
  /** The npm package that exports this definition. */
  readonly packageName: string;
  /**
   * The storage contract version the adapter is written against: `STORAGE_CONTRACT_VERSION`
   * of the storage-core it was built with. The registry refuses an adapter whose version this
   * storage-core does not support, instead of running it and failing in ways no test saw.
   */
  readonly contractVersion: number;
  /**
   * Validates the backend's configuration table (`[storage.<type>]`) and returns typed
   * options. Throws a `ConfigError` naming the option at fault. `env` supplies variables such
   * as a password named by `password_env`.
   */
  parseConfig(table: unknown, env?: Record<string, string | undefined>): TConfig;
  /** Opens the backend (creating its schema when needed). */
  create(config: TConfig): Promise<TBackend>;
  /**
   * For an adapter whose `create()` makes a new, empty database where none exists (SQLite
   * creates its file): says, in one phrase, that the database these options name is not there
   * ("there is no SQLite database at ./egide.db"), or returns undefined when it is. Tools that
   * read from a storage (backup, migrate) ask it first, so that a mistyped location is refused
   * instead of becoming an empty source. Adapters that fail to connect to a missing database
   * (PostgreSQL) leave it out.
   */
  findMissing?(config: TConfig): string | undefined;
}

/** A backend that also keeps the audit log in its own database. */
export interface AuditingBackend extends StorageBackend {
  /** The audit store that lives beside this backend's data. */
  readonly audit: AuditStore;
}
