import type { Transaction } from "@egide/storage-core";

/** How a mount table is stored: its entries, as JSON, at one key. */
interface StoredTable<M> {
  entries: M[];
}

/** The entries of a mount table as stored at one key (see {@link storedMountEntries}). */
export interface StoredMountEntries<M> {
  /** The entries of a stored table (none when it was never written), sorted by path. */
  decode(raw: Buffer | null): M[];
  /** The entries as seen by `tx` (a change reads through its transaction, so changes serialize). */
  read(tx: Pick<Transaction, "get">): Promise<M[]>;
  /** Replaces the stored table with `entries` in `tx`. */
  write(tx: Pick<Transaction, "put">, entries: M[]): Promise<void>;
}

/** The JSON form of a mount table at `key` (through the storage given, so encrypted by the barrier). */
export function storedMountEntries<M extends { path: string }>(key: string): StoredMountEntries<M> {
  const decode = (raw: Buffer | null): M[] => {
    if (raw === null) return [];
    const parsed = JSON.parse(raw.toString("utf8")) as Partial<StoredTable<M>>;
    const entries = Array.isArray(parsed.entries) ? parsed.entries : [];
    return [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  };
  return {
    decode,
    async read(tx) {
      return decode(await tx.get(key));
    },
    async write(tx, entries) {
      const table: StoredTable<M> = { entries };
      await tx.put(key, Buffer.from(JSON.stringify(table), "utf8"));
    },
  };
}
