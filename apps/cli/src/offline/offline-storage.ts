import { existsSync, readFileSync } from "node:fs";
import type { AuditingBackend } from "@egide/storage-core";
import type { ServerConfig } from "@egide/server";
import { CliError, usageError } from "../cli-error.js";
import type { CliIo } from "../cli-io.js";

/** A storage opened from a server configuration file, for the commands that work offline. */
export interface OfflineStorage {
  config: ServerConfig;
  raw: AuditingBackend;
}

/**
 * Reads `file` (the server's TOML configuration) and opens its storage adapter directly (no
 * server, no barrier): backups, restores and migrations work on the raw, still encrypted
 * records. Configuration errors name the option; an unreachable database is one clear line.
 * With `mustExist` (a storage to read from), a SQLite database that is not there is refused
 * rather than created.
 */
export async function openOfflineStorage(file: string, io: CliIo, options: { mustExist?: boolean } = {}): Promise<OfflineStorage> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw usageError(`cannot read the configuration ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  // Imported here: only the offline commands load the server's configuration and adapters.
  const { openStorageAdapter, parseServerConfig } = await import("@egide/server");
  let config: ServerConfig;
  try {
    config = parseServerConfig(text);
  } catch (error) {
    throw new CliError(`configuration error in ${file}: ${(error as Error).message}`, { cause: error });
  }
  // Opening a SQLite path creates the database: a source that is not there (a mistyped path)
  // would become an empty one. Only the SQLite adapter's `path` can be checked this way.
  const path = (config.storage.options as { path?: unknown } | undefined)?.path;
  if (options.mustExist && config.storage.type === "sqlite" && typeof path === "string" && path !== ":memory:" && !existsSync(path)) {
    throw new CliError(`the storage of ${file} does not exist: there is no SQLite database at ${path}`);
  }
  try {
    return { config, raw: await openStorageAdapter(config.storage, { env: { ...io.env } }) };
  } catch (error) {
    throw new CliError(`cannot open the storage of ${file}: ${(error as Error).message}`, { cause: error });
  }
}
