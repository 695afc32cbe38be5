import type { Transaction } from "@egide/storage-core";

/** Listing page size of the walk. */
const PAGE = 1000;

/**
 * Deletes every key under `prefix` inside `tx` (so it commits or rolls back with the rest of
 * the transaction), walking the tree with `listPage` a page at a time: memory holds one page
 * per folder level, never the whole key set. Returns how many keys were deleted.
 */
export async function clearStorage(tx: Transaction, prefix = ""): Promise<number> {
  let deleted = 0;
  let after = "";
  for (;;) {
    const page = await tx.listPage(prefix, after, PAGE);
    for (const child of page) {
      if (child.endsWith("/")) deleted += await clearStorage(tx, prefix + child);
      else {
        await tx.delete(prefix + child);
        deleted++;
      }
    }
    if (page.length < PAGE) return deleted;
    after = page[page.length - 1] as string;
  }
}
