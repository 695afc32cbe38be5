import { readFileSync } from "node:fs";
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
 */
export async function openOfflineStorage(file: string, io: CliIo): Promise<OfflineStorage> {
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
  try {
    return { config, raw: await openStorageAdapter(config.storage, { env: { ...io.env } }) };
  } catch (error) {
    throw new CliError(`cannot open the storage of ${file}: ${(error as Error).message}`, { cause: error });
  }
}
