import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, openStorageAdapter, type AuditingBackend } from "@egide/storage-core";
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
 * With `mustExist` (a storage to read from), a database that is not there is refused rather
 * than created (the adapter's definition says whether it would create one).
 */
export async function openOfflineStorage(file: string, io: CliIo, options: { mustExist?: boolean } = {}): Promise<OfflineStorage> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw usageError(`cannot read the configuration ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  // Imported here: only the offline commands load the server's configuration and adapters.
  const { SHIPPED_STORAGE_PACKAGES, parseServerConfig } = await import("@egide/server");
  let config: ServerConfig;
  try {
    config = parseServerConfig(text);
  } catch (error) {
    throw new CliError(`configuration error in ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const raw = await openStorageAdapter(config.storage, {
      env: { ...io.env },
      packages: SHIPPED_STORAGE_PACKAGES,
      resolveFrom: dirname(fileURLToPath(import.meta.url)),
      ...(options.mustExist ? { mustExist: true } : {}),
    });
    return { config, raw };
  } catch (error) {
    if (ConfigError.isInstance(error) && error.code === "STORAGE_NOT_FOUND") {
      throw new CliError(`the storage of ${file} does not exist: ${error.message}`, { cause: error });
    }
    throw new CliError(`cannot open the storage of ${file}: ${(error as Error).message}`, { cause: error });
  }
}
