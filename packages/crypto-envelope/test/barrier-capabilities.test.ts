import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeDecoratorCapabilities, requiredBackend } from "@egide/storage-conformance";
import { StorageErrorCode, putEntries, wrapStorage } from "@egide/storage-core";
import type { ScanEntry, StorageBackend, Transaction } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { barrier } from "../src/index.js";
import type { SealManager } from "../src/index.js";
import { expectRejectedStorageError } from "./support/expect-errors.js";
import { openSealedStack } from "./support/sealed-stack.js";

// The barrier is built with wrapStorage: it keeps exactly the optional capabilities of the
// backend beneath (bulk puts and audit rows in transactions, the audit store, poolStats) and
// invents none. Its putMany encrypts every value, as put does, and checks every entry first.

const dir = mkdtempSync(join(tmpdir(), "egide-barrier-capabilities-"));
let files = 0;
const file = () => join(dir, `caps-${++files}.sqlite`);

/** One seal manager (initialised and unsealed) over a SQLite file, whose keys every wrapped backend uses. */
let sealRaw: StorageBackend;
let seal: SealManager;

beforeAll(async () => {
  const stack = await openSealedStack({ raw: SqliteBackend.open({ path: file() }) });
  for (const share of stack.shares) share.fill(0);
  sealRaw = stack.raw;
  seal = stack.seal;
});

afterAll(async () => {
  await sealRaw?.close();
  rmSync(dir, { recursive: true, force: true });
});

describeDecoratorCapabilities({
  name: "barrier (unsealed, SQLite file seal)",
  wrap: (inner) => barrier(inner, seal),
  create: async () => SqliteBackend.open({ path: file() }),
});

/** `raw`, counting the entries of each bulk put its transactions receive. */
function countingPutMany(raw: StorageBackend): { backend: StorageBackend; calls: number[] } {
  const calls: number[] = [];
  const backend = wrapStorage(raw, {
    wrapTransaction: (tx: Transaction) => ({
      putMany(entries: readonly ScanEntry[]) {
        calls.push(entries.length);
        return (tx.putMany as (entries: readonly ScanEntry[]) => Promise<void>).call(tx, entries);
      },
    }),
  });
  return { backend, calls };
}

describe("putMany through the barrier", () => {
  const entries: ScanEntry[] = [
    { key: "bulk/a", value: Buffer.from("PLAINTEXT-BULK-alpha") },
    { key: "bulk/b", value: Buffer.from("PLAINTEXT-BULK-beta") },
    { key: "bulk/nested/c", value: Buffer.alloc(4096, "PLAINTEXT-BULK-gamma") },
  ];

  it("writes records that read back decrypted and are encrypted at rest, in one bulk put", async () => {
    const raw = SqliteBackend.open({ path: file() });
    const { seal: own, shares } = await openSealedStack({ raw });
    for (const share of shares) share.fill(0);
    const { backend, calls } = countingPutMany(raw);
    const b = barrier(backend, own);
    try {
      await b.transaction(async (tx) => {
        expect(typeof tx.putMany).toBe("function");
        await tx.putMany?.(entries);
        // Visible, decrypted, inside the transaction that wrote them.
        expect((await tx.get("bulk/a"))?.toString()).toBe("PLAINTEXT-BULK-alpha");
      });
      expect(calls).toEqual([entries.length]);
      for (const entry of entries) {
        expect(await b.get(entry.key)).toEqual(entry.value);
        const record = await raw.get(entry.key);
        expect(record).not.toBeNull();
        expect(record?.equals(entry.value)).toBe(false);
        expect(record?.includes("PLAINTEXT-BULK")).toBe(false);
      }
      expect(await b.list("bulk/")).toEqual(["a", "b", "nested/"]);
      // putEntries takes the bulk path through the barrier too.
      await b.transaction((tx) => putEntries(tx, [{ key: "bulk/d", value: Buffer.from("PLAINTEXT-BULK-delta") }]));
      expect(calls).toEqual([entries.length, 1]);
      expect((await b.get("bulk/d"))?.toString()).toBe("PLAINTEXT-BULK-delta");
      expect((await raw.get("bulk/d"))?.includes("PLAINTEXT-BULK")).toBe(false);
      // Rolled back with its transaction.
      await expect(
        b.transaction(async (tx) => {
          await tx.putMany?.([{ key: "bulk/e", value: Buffer.from("e") }]);
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await b.exists("bulk/e")).toBe(false);
    } finally {
      await raw.close();
    }
  });

  it("refuses reserved keys, oversize values and read-only transactions, writing none of the entries", async () => {
    const raw = SqliteBackend.open({ path: file() });
    const { seal: own, shares } = await openSealedStack({ raw });
    for (const share of shares) share.fill(0);
    const { backend, calls } = countingPutMany(raw);
    const b = barrier(backend, own, { maxValueBytes: 64 });
    try {
      const keysBefore = await raw.list(".egide/");
      await b.transaction(async (tx) => {
        await expectRejectedStorageError(
          () =>
            tx.putMany?.([
              { key: "ok/first", value: Buffer.from("fine") },
              { key: ".egide/keyring", value: Buffer.from("x") },
            ]),
          StorageErrorCode.INVALID_KEY,
          "reserved key",
        );
        await expectRejectedStorageError(
          () =>
            tx.putMany?.([
              { key: "ok/first", value: Buffer.from("fine") },
              { key: "ok/big", value: Buffer.alloc(65) },
            ]),
          StorageErrorCode.VALUE_TOO_LARGE,
          "oversize value",
        );
        await expectRejectedStorageError(
          () => tx.putMany?.([{ key: "", value: Buffer.from("x") }]),
          StorageErrorCode.INVALID_KEY,
          "empty key",
        );
        expect(await tx.exists("ok/first")).toBe(false);
        // At the limit is accepted.
        await tx.putMany?.([{ key: "ok/limit", value: Buffer.alloc(64, 1) }]);
      });
      expect(calls).toEqual([1]);
      expect(await b.get("ok/limit")).toEqual(Buffer.alloc(64, 1));
      expect(await raw.list(".egide/")).toEqual(keysBefore);

      await b.transaction(
        async (tx) => {
          expect(typeof tx.putMany).toBe("function");
          await expectRejectedStorageError(
            () => tx.putMany?.([{ key: "ok/ro", value: Buffer.from("x") }]),
            StorageErrorCode.READ_ONLY,
            "read-only",
          );
        },
        { readOnly: true },
      );
      expect(calls).toEqual([1]);

      // A transaction's putMany is unusable once its callback settled.
      let leaked: Transaction | undefined;
      await b.transaction(async (tx) => {
        leaked = tx;
      });
      await expectRejectedStorageError(
        () => leaked?.putMany?.([{ key: "ok/late", value: Buffer.from("x") }]),
        StorageErrorCode.CLOSED,
        "closed",
      );

      own.seal();
      await expectRejectedStorageError(
        () => b.transaction((tx) => tx.putMany?.([]) ?? Promise.resolve()),
        StorageErrorCode.SEALED,
        "sealed",
      );
    } finally {
      await raw.close();
    }
  });

  it("is absent over a backend whose transactions have none, and audit/poolStats follow the backend", async () => {
    const raw = SqliteBackend.open({ path: file() });
    const { seal: own, shares } = await openSealedStack({ raw });
    for (const share of shares) share.fill(0);
    // A backend whose transactions lack putMany and appendAudit, and that has no audit store.
    const bare = requiredBackend(raw);
    try {
      const overBare = barrier(bare, own) as StorageBackend & Record<string, unknown>;
      expect("audit" in overBare).toBe(false);
      expect("poolStats" in overBare).toBe(false);
      await overBare.transaction(async (tx) => {
        expect("putMany" in tx).toBe(false);
        expect("appendAudit" in tx).toBe(false);
        await putEntries(tx, [{ key: "slow/a", value: Buffer.from("PLAINTEXT-SLOW") }]);
      });
      expect((await overBare.get("slow/a"))?.toString()).toBe("PLAINTEXT-SLOW");
      expect((await raw.get("slow/a"))?.includes("PLAINTEXT-SLOW")).toBe(false);

      const overRaw = barrier(raw, own);
      expect(typeof (overRaw as unknown as Record<string, unknown>).audit).toBe("object");
    } finally {
      await raw.close();
    }
  });
});
