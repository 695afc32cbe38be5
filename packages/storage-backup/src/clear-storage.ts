import { deleteTree } from "@egide/storage-core";
import type { Transaction } from "@egide/storage-core";

/** Listing page size of the walk. */
const PAGE = 1000;

/**
 * Deletes every key under `prefix` inside `tx` (so it commits or rolls back with the rest of
 * the transaction), walking the tree with `listPage` a page at a time: memory holds one page
 * per folder level, never the whole key set. Returns how many keys were deleted. The walk is
 * storage-core's `deleteTree`.
 */
export function clearStorage(tx: Transaction, prefix = ""): Promise<number> {
  return deleteTree(tx, prefix, { pageSize: PAGE });
}
