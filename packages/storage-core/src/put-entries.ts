import type { ScanEntry, Transaction } from "./storage-backend.js";

/**
 * Puts `entries` in `tx`: in one call when the backend offers {@link Transaction.putMany}, else
 * one `put` after another. Either way the entries commit or roll back with the transaction.
 */
export async function putEntries(tx: Transaction, entries: readonly ScanEntry[]): Promise<void> {
  if (entries.length === 0) return;
  if (tx.putMany) {
    await tx.putMany(entries);
    return;
  }
  for (const entry of entries) await tx.put(entry.key, entry.value);
}
