import { expect, it } from "vitest";
import { StorageErrorCode, putEntries } from "@egide/storage-core";
import type { ScanEntry, StorageBackend } from "@egide/storage-core";
import { collectScan } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { expectStorageError } from "./expect-storage-error.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { hexOrNull, utf8 } from "./utf8.js";

/** Binary values with every byte, so an encoding slip in a bulk statement shows. */
function binaryValue(i: number): Buffer {
  const value = Buffer.alloc(64 + (i % 200));
  for (let j = 0; j < value.length; j++) value[j] = (i * 31 + j) & 0xff;
  return value;
}

/**
 * Bulk puts inside a transaction (`Transaction.putMany` when the backend offers it, through
 * `putEntries`, which falls back to one put after another): the same result as puts one by one,
 * atomic with the transaction, and checked like puts.
 */
export function exercisePutMany(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), TEST_TIMEOUT_MS);
  };

  test("bulk puts write every entry byte for byte, overwriting and keeping the last of a duplicate", async (b) => {
    await b.put("bulk/0001", utf8("old"));
    const entries: ScanEntry[] = [];
    for (let i = 0; i < 1500; i++) entries.push({ key: `bulk/${String(i).padStart(4, "0")}`, value: binaryValue(i) });
    entries.push({ key: "bulk/0007", value: utf8("last wins") });
    await b.transaction((tx) => putEntries(tx, entries));
    const stored = await collectScan(b, "bulk/");
    expect(stored).toHaveLength(1500);
    for (const [i, entry] of stored.entries()) {
      const expected = i === 7 ? utf8("last wins") : binaryValue(i);
      expect(entry.key).toBe(`bulk/${String(i).padStart(4, "0")}`);
      expect(hexOrNull(entry.value), entry.key).toBe(hexOrNull(expected));
    }
  });

  test("bulk puts roll back with their transaction and are seen inside it", async (b) => {
    const failure = new Error("roll back");
    await expect(
      b.transaction(async (tx) => {
        await putEntries(tx, [
          { key: "rb/a", value: utf8("a") },
          { key: "rb/b", value: utf8("b") },
        ]);
        expect(hexOrNull(await tx.get("rb/b"))).toBe(hexOrNull(utf8("b")));
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await b.list("rb/")).toEqual([]);
  });

  test("a bad key in a bulk put rejects it, and nothing of the batch is written", async (b) => {
    await expectStorageError(
      () =>
        b.transaction((tx) =>
          putEntries(tx, [
            { key: "ok/one", value: utf8("1") },
            { key: "/leading-slash", value: utf8("2") },
          ]),
        ),
      StorageErrorCode.INVALID_KEY,
    );
    expect(await b.get("ok/one")).toBeNull();
  });

  test("bulk puts in a read-only transaction are refused with READ_ONLY", async (b) => {
    await expectStorageError(
      () => b.transaction((tx) => putEntries(tx, [{ key: "ro/x", value: utf8("x") }]), { readOnly: true }),
      StorageErrorCode.READ_ONLY,
    );
    expect(await b.get("ro/x")).toBeNull();
  });

  test("an empty bulk put is a no-op", async (b) => {
    await b.transaction((tx) => putEntries(tx, []));
    expect(await b.list("")).toEqual([]);
  });
}
