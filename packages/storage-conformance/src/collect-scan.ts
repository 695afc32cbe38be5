import type { ScanEntry, StorageBackend } from "@egide/storage-core";

/** Reads a whole `scan(prefix)` into an array. */
export async function collectScan(backend: StorageBackend, prefix: string): Promise<ScanEntry[]> {
  const entries: ScanEntry[] = [];
  for await (const entry of backend.scan(prefix)) entries.push(entry);
  return entries;
}

/** The keys of a whole `scan(prefix)`, in the order the backend yielded them. */
export async function scanKeys(backend: StorageBackend, prefix: string): Promise<string[]> {
  return (await collectScan(backend, prefix)).map((entry) => entry.key);
}
