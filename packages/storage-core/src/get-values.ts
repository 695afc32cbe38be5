import type { StorageBackend, Transaction } from "./storage-backend.js";

/**
 * The values at `keys`, in order (`null` where absent): through `getMany` when the backend or
 * transaction has it (one round trip), else `get` for each key, concurrently. The way callers
 * read several keys at once, as {@link putEntries} is the way they write many.
 */
export function getValues(
  storage: Pick<StorageBackend | Transaction, "get" | "getMany">,
  keys: readonly string[],
): Promise<(Buffer | null)[]> {
  if (keys.length === 0) return Promise.resolve([]);
  if (typeof storage.getMany === "function") return storage.getMany(keys);
  return Promise.all(keys.map((key) => storage.get(key)));
}
