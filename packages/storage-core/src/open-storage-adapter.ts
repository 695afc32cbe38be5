import type { AuditingBackend } from "./backend-definition.js";
import { BackendRegistry } from "./backend-registry.js";
import { ConfigError } from "./config-error.js";

/** The `[storage]` table of a configuration: which adapter, and its options. */
export interface StorageSelection {
  /** The storage type (`[storage] type`), resolved through a {@link BackendRegistry}. */
  readonly type: string;
  /**
   * The npm package that provides `type` (`[storage] package`), for an adapter whose name
   * follows no convention. Default: the registry's mapping, else the convention.
   */
  readonly package?: string;
  /** The adapter's own options (`[storage.<type>]`), validated by its `parseConfig`. */
  readonly options?: unknown;
}

/** Options of {@link openStorageAdapter}. */
export interface OpenStorageAdapterOptions {
  /** Environment for the adapter's options (`password_env`, …). Default: `process.env`. */
  env?: Record<string, string | undefined>;
  /** Where adapter packages are resolved from, in order (walking up each one's node_modules). Default: the working directory. */
  resolveFrom?: string | readonly string[];
  /** Type → package mappings for types whose package is not `@egide/storage-<type>`. */
  packages?: Readonly<Record<string, string>>;
  /** A registry to resolve from instead of a new one (then `resolveFrom` and `packages` are not used). */
  registry?: BackendRegistry;
  /**
   * Refuse, with `STORAGE_NOT_FOUND`, a storage that is not there yet instead of creating an
   * empty one (for a source to read from: backup, migrate). Only adapters that would create it
   * can tell; see `BackendDefinition.findMissing`.
   */
  mustExist?: boolean;
}

/**
 * Opens the storage adapter a configuration's `[storage]` table names: resolves the installed
 * package, validates the options with the adapter's own `parseConfig`, and opens it. The server
 * stacks metrics and the barrier on the result; offline tools (backup, restore, migrate) use it
 * as it is. Egide keeps its audit log beside its data, so an adapter without an audit store is
 * refused (`INVALID_CONFIG`), and closed again.
 */
export async function openStorageAdapter(storage: StorageSelection, options: OpenStorageAdapterOptions = {}): Promise<AuditingBackend> {
  const registry =
    options.registry ??
    new BackendRegistry({ resolveFrom: options.resolveFrom ?? process.cwd(), ...(options.packages ? { packages: options.packages } : {}) });
  const definition = await registry.resolve(storage.type, storage.package);
  const config: unknown = definition.parseConfig(storage.options ?? {}, options.env ?? process.env);
  if (options.mustExist) {
    const missing = definition.findMissing?.(config);
    if (missing !== undefined) throw new ConfigError("STORAGE_NOT_FOUND", missing);
  }
  const backend = (await definition.create(config)) as Partial<AuditingBackend> & { close(): Promise<void> };
  if (typeof backend.audit?.append !== "function") {
    await backend.close();
    throw new ConfigError(
      "INVALID_CONFIG",
      `storage type "${storage.type}" has no audit store; Egide keeps its audit log beside its data`,
      { option: "storage.type" },
    );
  }
  return backend as AuditingBackend;
}
