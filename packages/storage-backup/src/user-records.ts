import { RESERVED_PREFIX } from "@egide/crypto-envelope";
import type { StorageBackend } from "@egide/storage-core";

/**
 * Whether `storage` holds any record besides an installation's own `.egide/` records, i.e.
 * anything a restore or migration would overwrite that the operator may want to keep.
 */
export async function holdsUserRecords(storage: StorageBackend): Promise<boolean> {
  const top = await storage.listPage("", "", 2);
  return top.some((entry) => entry !== RESERVED_PREFIX);
}
