import type { StorageBackend } from "@egide/storage-core";
import { RecordDigest } from "./record-digest.js";
import type { RecordSummary } from "./record-digest.js";

/**
 * The record count and digest of everything in `storage` (one `scan("")` snapshot), skipping
 * `exclude`d keys: the same definition a backup's trailer uses, so two stores, or a store and a
 * backup, compare equal exactly when they hold the same records.
 */
export async function summarizeStorage(
  storage: StorageBackend,
  options: { exclude?: ReadonlySet<string>; onProgress?: (records: number, bytes: number) => void } = {},
): Promise<RecordSummary> {
  const digest = new RecordDigest();
  for await (const { key, value } of storage.scan("")) {
    if (options.exclude?.has(key)) continue;
    digest.add(key, value);
    if (digest.count % 1000 === 0) options.onProgress?.(digest.count, digest.bytes);
  }
  options.onProgress?.(digest.count, digest.bytes);
  return digest.summary();
}
