import type { StorageBackend } from "@egide/storage-core";

/** The folder of an installation's own seal and key records (`RESERVED_PREFIX` of crypto-envelope). */
export const INSTALLATION_PREFIX = ".egide/";

/**
 * Whether `storage` holds any record besides an installation's own `.egide/` records, i.e.
 * anything a restore or migration would overwrite that the operator may want to keep.
 */
export async function holdsUserRecords(storage: StorageBackend): Promise<boolean> {
  const top = await storage.listPage("", "", 2);
  return top.some((entry) => entry !== INSTALLATION_PREFIX);
}
