import type { StorageBackend } from "@egide/storage-core";
import { scanKeys } from "./collect-scan.js";

/**
 * Deletes every key of a backend, found with `scan("")`. Keys are collected before deleting so
 * the scan never runs over rows it is removing.
 */
export async function clearBackend(backend: StorageBackend): Promise<void> {
  for (const key of await scanKeys(backend, "")) await backend.delete(key);
}
