import { afterEach, beforeEach } from "vitest";
import type { Transaction } from "@egide/storage-core";
import type { SqliteBackend } from "@egide/storage-sqlite";
import { MountTable } from "../../src/mounts/mount-table.js";
import { memoryStorage } from "./kv-test-context.js";

/** A fresh in-memory SQLite storage and a mount table over it, per test (see {@link useMemoryMountTable}). */
export interface MemoryMountTable {
  /** The current test's storage. */
  readonly storage: SqliteBackend;
  /** The current test's mount table (default options). */
  readonly mounts: MountTable;
  /** Runs `fn` in one transaction of the current test's storage. */
  tx<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
}

/**
 * Registers `beforeEach`/`afterEach` hooks in the calling file or `describe`: each test gets
 * a new in-memory SQLite storage and a {@link MountTable} over it, closed after the test.
 * Read `storage` and `mounts` inside the tests (they change from one test to the next).
 */
export function useMemoryMountTable(): MemoryMountTable {
  let current: { storage: SqliteBackend; mounts: MountTable } | undefined;
  const get = () => {
    if (current === undefined) throw new Error("the memory mount table is only available inside a test");
    return current;
  };
  beforeEach(() => {
    const storage = memoryStorage();
    current = { storage, mounts: new MountTable(storage) };
  });
  afterEach(async () => {
    await get().storage.close();
    current = undefined;
  });
  return {
    get storage() {
      return get().storage;
    },
    get mounts() {
      return get().mounts;
    },
    tx: (fn) => get().storage.transaction(fn),
  };
}
