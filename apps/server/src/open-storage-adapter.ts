import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { BackendRegistry, ConfigError } from "@egide/storage-core";
import type { AuditingBackend } from "@egide/storage-core";
import type { ServerConfig } from "./config/server-config.js";

/** Options of {@link openStorageAdapter}. */
export interface OpenStorageAdapterOptions {
  /** Environment for the adapter's options (`password_env`, …). Default: `process.env`. */
  env?: Record<string, string | undefined>;
  /** Where storage adapters are resolved from. Default: this package's location, then the working directory. */
  resolveFrom?: string;
}

/**
 * Opens the raw storage adapter that `[storage] type` names, from the installed package
 * (`@egide/storage-sqlite`, `@egide/storage-postgres`, or a third-party adapter), validating
 * its options. The server stacks metrics and the barrier on it; offline tools (backup,
 * restore, migrate) use it as is. Adapters without an audit store are refused: the server
 * needs one.
 */
export async function openStorageAdapter(storage: ServerConfig["storage"], options: OpenStorageAdapterOptions = {}): Promise<AuditingBackend> {
  const env = options.env ?? process.env;
  const registry = new BackendRegistry({ resolveFrom: options.resolveFrom ?? dirname(fileURLToPath(import.meta.url)) });
  const definition = await registry.resolve(storage.type);
  const adapterConfig = definition.parseConfig(storage.options, env);
  const raw = (await definition.create(adapterConfig)) as AuditingBackend;
  if (typeof (raw as Partial<AuditingBackend>).audit?.append !== "function") {
    await raw.close();
    throw new ConfigError("INVALID_CONFIG", `storage type "${storage.type}" has no audit store; the server needs one`, { option: "storage.type" });
  }
  return raw;
}
