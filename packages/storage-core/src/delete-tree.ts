import type { Transaction } from "./storage-backend.js";

/** Options of {@link deleteTree}. */
export interface DeleteTreeOptions {
  /** Children listed per `listPage` call (default {@link DELETE_TREE_PAGE}). */
  pageSize?: number;
}

/** The default listing page of {@link deleteTree}. */
export const DELETE_TREE_PAGE = 1000;

/**
 * Deletes every key under `prefix` ("" for everything) inside `tx`, so the deletion commits or
 * rolls back with the rest of the caller's transaction. Walks the tree with `listPage` a page
 * at a time, recursing into folders and deleting leaves: memory holds one page per folder
 * level, never the whole key set. Returns how many keys were deleted.
 */
export async function deleteTree(tx: Transaction, prefix: string, options: DeleteTreeOptions = {}): Promise<number> {
  const pageSize = options.pageSize ?? DELETE_TREE_PAGE;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RangeError("deleteTree: pageSize must be a positive integer");
  return deleteBelow(tx, prefix, pageSize);
}

async function deleteBelow(tx: Transaction, prefix: string, pageSize: number): Promise<number> {
  let deleted = 0;
  let after = "";
  for (;;) {
    const page = await tx.listPage(prefix, after, pageSize);
    for (const child of page) {
      if (child.endsWith("/")) deleted += await deleteBelow(tx, prefix + child, pageSize);
      else {
        await tx.delete(prefix + child);
        deleted += 1;
      }
    }
    if (page.length < pageSize) return deleted;
    after = page[page.length - 1] as string;
  }
}
