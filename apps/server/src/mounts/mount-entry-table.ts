import type { StorageBackend, Transaction } from "@egide/storage-core";
import type { CacheCoherence } from "../cache/cache-coherence.js";
import { CachedRecord } from "./cached-record.js";
import { type MountMatch, longestPrefixMount } from "./longest-prefix.js";
import type { MountEntry } from "./mount-entry.js";
import { mountPath } from "./mount-path.js";
import { type StoredMountEntries, storedMountEntries } from "./stored-mount-entries.js";

/** How a {@link MountEntryTable} reads its stored table. */
export interface MountEntryTableOptions {
  /** How long a table read from storage is used before reading it again, ms. */
  cacheMs: number;
  /** The clock. */
  now: () => number;
  /** The storage change feed's view: given, the table is cached until it changes (see {@link CachedRecord}). */
  coherence?: CacheCoherence | undefined;
}

/**
 * The read side shared by the mount tables (secrets engines, auth methods): the entries stored
 * as JSON at one key through the (encrypting) storage, read through a {@link CachedRecord} so
 * that an entry added or removed by another server instance is seen as soon as the change feed
 * tells (or within `cacheMs` without one). Each
 * table adds its own changes, which read and write the table through the caller's
 * transaction ({@link stored}) and call {@link invalidate}.
 */
export class MountEntryTable<M extends Pick<MountEntry, "path" | "uuid">> {
  /** The stored table, for changes made inside a transaction. */
  protected readonly stored: StoredMountEntries<M>;
  readonly #table: CachedRecord<M[]>;

  constructor(storage: StorageBackend, key: string, options: MountEntryTableOptions) {
    this.stored = storedMountEntries<M>(key);
    this.#table = new CachedRecord(storage, key, this.stored.decode, options);
  }

  /** Every entry, sorted by path. */
  async list(): Promise<M[]> {
    return this.#table.read();
  }

  /**
   * The entry that answers `path`: the longest mount path that prefixes it, and the rest of the
   * path below it (see {@link longestPrefixMount}). Null when none matches.
   */
  async find(path: string): Promise<MountMatch<M> | null> {
    return longestPrefixMount(await this.list(), path);
  }

  /** The entry at exactly `path` (normalised by {@link mountPath}), or null. */
  async get(path: string): Promise<M | null> {
    const normalised = mountPath(path);
    return (await this.list()).find((mount) => mount.path === normalised) ?? null;
  }

  /**
   * Whether `mount` is still in the table as seen by `tx`: a write into an entry's data checks
   * this inside its transaction, so that it cannot land in an entry another instance has just
   * removed (whose data would then be orphaned).
   */
  async isMounted(tx: Pick<Transaction, "get">, mount: Pick<M, "uuid">): Promise<boolean> {
    return (await this.stored.read(tx)).some((entry) => entry.uuid === mount.uuid);
  }

  /**
   * Removes the entry at exactly `path` (table form) from the table as seen by `tx`, and
   * returns it; null, with nothing written, when there is none. The caller purges its data in
   * the same transaction and calls {@link invalidate}.
   */
  protected async removeIn(tx: Pick<Transaction, "get" | "put">, path: string): Promise<M | null> {
    const entries = await this.stored.read(tx);
    const removed = entries.find((entry) => entry.path === path);
    if (removed === undefined) return null;
    await this.stored.write(
      tx,
      entries.filter((entry) => entry !== removed),
    );
    return removed;
  }

  /** Forgets the cached table: the next read goes to storage. */
  invalidate(): void {
    this.#table.invalidate();
  }
}
