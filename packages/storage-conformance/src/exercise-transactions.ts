import { expect, it } from "vitest";
import { StorageErrorCode } from "@egide/storage-core";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import { collectScan } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { expectStorageError } from "./expect-storage-error.js";
import { holdOpenTransaction, readOrPending } from "./hold-open-transaction.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { hexOrNull, utf8 } from "./utf8.js";

const V1 = utf8("v1");
const V2 = utf8("v2");

/** An error class of the caller's own, to check that a rollback hands it back untouched. */
class CallerError extends Error {
  override readonly name = "CallerError";
}

/**
 * Captures the `tx` of a transaction that has settled (committed when `fail` is false, rolled
 * back otherwise), for the tests of use after settlement.
 */
async function settledTransaction(backend: StorageBackend, fail: boolean, readOnly = false): Promise<Transaction> {
  let captured: Transaction | undefined;
  const marker = new CallerError("roll back");
  const outcome = backend.transaction(
    async (tx) => {
      captured = tx;
      if (!readOnly) await tx.put("settled/inside", V1);
      if (fail) throw marker;
    },
    { readOnly },
  );
  if (fail) await expect(outcome).rejects.toBe(marker);
  else await outcome;
  expect(captured, "the callback never ran").toBeDefined();
  return captured as Transaction;
}

/**
 * Transactions: commit and rollback, read-your-writes for every read, use after settlement
 * (`CLOSED`, the "double commit/rollback" of OpenBao's `ExerciseTransactionalBackend`),
 * read-only transactions, and isolation of an open transaction from outside readers.
 */
export function exerciseTransactions(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), TEST_TIMEOUT_MS);
  };

  test("the callback's return value is returned", async (b) => {
    const result = { answer: 42 };
    expect(await b.transaction(async () => result)).toBe(result);
    expect(await b.transaction(async () => "read-only result", { readOnly: true })).toBe("read-only result");
  });

  test("an empty transaction commits, read-write and read-only", async (b) => {
    await expect(b.transaction(async () => undefined)).resolves.toBeUndefined();
    await expect(b.transaction(async () => undefined, { readOnly: true })).resolves.toBeUndefined();
    expect(await b.list("")).toEqual([]);
  });

  test("commit makes puts and deletes visible", async (b) => {
    await b.put("tx/old", V1);
    await b.transaction(async (tx) => {
      await tx.put("tx/new", V2);
      await tx.delete("tx/old");
    });
    expect(hexOrNull(await b.get("tx/new"))).toBe(hexOrNull(V2));
    expect(await b.get("tx/old")).toBeNull();
    expect(await b.list("tx/")).toEqual(["new"]);
  });

  test("writes issued before reads are read back (get, exists) inside", async (b) => {
    await b.transaction(async (tx) => {
      await tx.put("foo", utf8("foo"));
      expect(hexOrNull(await tx.get("foo"))).toBe(hexOrNull(utf8("foo")));
      expect(await tx.exists("foo")).toBe(true);
      await tx.put("foo", utf8("foo2"));
      expect(hexOrNull(await tx.get("foo"))).toBe(hexOrNull(utf8("foo2")));
    });
    expect(hexOrNull(await b.get("foo"))).toBe(hexOrNull(utf8("foo2")));
  });

  test("list and listPage inside see the transaction's own puts and deletes", async (b) => {
    await b.put("d/keep", V1);
    await b.put("d/gone", V1);
    await b.put("d/sub/only", V1);
    await b.transaction(async (tx) => {
      await tx.put("d/new", V2);
      await tx.put("d/fresh/x", V2);
      await tx.delete("d/gone");
      await tx.delete("d/sub/only");
      expect(await tx.list("d/")).toEqual(["fresh/", "keep", "new"]);
      expect(await tx.listPage("d/", "", 2)).toEqual(["fresh/", "keep"]);
      expect(await tx.listPage("d/", "keep", -1)).toEqual(["new"]);
      expect(await tx.list("")).toEqual(["d/"]);
    });
    expect(await b.list("d/")).toEqual(["fresh/", "keep", "new"]);
  });

  test("a delete inside hides the key from the transaction's reads", async (b) => {
    await b.put("k", V1);
    await b.transaction(async (tx) => {
      expect(await tx.exists("k")).toBe(true);
      await tx.delete("k");
      expect(await tx.get("k")).toBeNull();
      expect(await tx.exists("k")).toBe(false);
      expect(await tx.list("")).toEqual([]);
    });
    expect(await b.exists("k")).toBe(false);
  });

  test("reads before writes, then a delete, commit (OpenBao)", async (b) => {
    await b.put("foo", utf8("foo"));
    await b.transaction(async (tx) => {
      expect(await tx.list("")).toEqual(["foo"]);
      expect(hexOrNull(await tx.get("foo"))).toBe(hexOrNull(utf8("foo")));
      await tx.delete("foo");
    });
    expect(await b.list("")).toEqual([]);
  });

  test("a throwing callback leaves nothing behind and its error propagates unchanged", async (b) => {
    await b.put("r/existing", V1);
    await b.put("r/doomed", V1);
    const failure = new CallerError("changed my mind");
    await expect(
      b.transaction(async (tx) => {
        await tx.put("r/new", V2);
        await tx.put("r/existing", V2);
        await tx.delete("r/doomed");
        await tx.put("r/deep/er", V2);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await b.get("r/new")).toBeNull();
    expect(hexOrNull(await b.get("r/existing"))).toBe(hexOrNull(V1));
    expect(hexOrNull(await b.get("r/doomed"))).toBe(hexOrNull(V1));
    expect((await collectScan(b, "")).map((entry) => entry.key)).toEqual(["r/doomed", "r/existing"]);
  });

  test("a callback that throws before any await also rolls back with the same error", async (b) => {
    const failure = new CallerError("synchronous failure");
    await expect(
      b.transaction((tx) => {
        void tx.put("sync/never", V1).catch(() => undefined);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await b.get("sync/never")).toBeNull();
  });

  test("a rolled-back transaction does not block later ones", async (b) => {
    await expect(
      b.transaction(async (tx) => {
        await tx.put("after/a", V1);
        throw new CallerError("first fails");
      }),
    ).rejects.toBeInstanceOf(CallerError);
    await b.transaction(async (tx) => tx.put("after/b", V2));
    await b.put("after/c", V1);
    expect(await b.list("after/")).toEqual(["b", "c"]);
  });

  test("sequential transactions see each other's commits", async (b) => {
    await b.transaction(async (tx) => tx.put("seq", V1));
    await b.transaction(async (tx) => {
      expect(hexOrNull(await tx.get("seq"))).toBe(hexOrNull(V1));
      await tx.put("seq", V2);
    });
    expect(hexOrNull(await b.get("seq"))).toBe(hexOrNull(V2));
  });

  test("using tx after commit fails with CLOSED and writes nothing", async (b) => {
    const tx = await settledTransaction(b, false);
    await expectStorageError(() => tx.put("settled/late", V2), StorageErrorCode.CLOSED);
    await expectStorageError(() => tx.delete("settled/inside"), StorageErrorCode.CLOSED);
    await expectStorageError(() => tx.get("settled/inside"), StorageErrorCode.CLOSED);
    await expectStorageError(() => tx.exists("settled/inside"), StorageErrorCode.CLOSED);
    await expectStorageError(() => tx.list(""), StorageErrorCode.CLOSED);
    await expectStorageError(() => tx.listPage("", "", 1), StorageErrorCode.CLOSED);
    expect(await b.get("settled/late")).toBeNull();
    expect(hexOrNull(await b.get("settled/inside"))).toBe(hexOrNull(V1));
  });

  test("using tx after rollback fails with CLOSED and writes nothing", async (b) => {
    const tx = await settledTransaction(b, true);
    await expectStorageError(() => tx.put("settled/late", V2), StorageErrorCode.CLOSED);
    await expectStorageError(() => tx.delete("settled/late"), StorageErrorCode.CLOSED);
    await expectStorageError(() => tx.get("settled/inside"), StorageErrorCode.CLOSED);
    await expectStorageError(() => tx.list(""), StorageErrorCode.CLOSED);
    expect(await collectScan(b, "")).toEqual([]);
  });

  test("using a read-only tx after it settled fails with CLOSED", async (b) => {
    const committed = await settledTransaction(b, false, true);
    await expectStorageError(() => committed.get("x"), StorageErrorCode.CLOSED);
    const rolledBack = await settledTransaction(b, true, true);
    await expectStorageError(() => rolledBack.exists("x"), StorageErrorCode.CLOSED);
    await expectStorageError(() => rolledBack.put("x", V1), StorageErrorCode.CLOSED);
  });

  test("a read-only transaction rejects put with READ_ONLY", async (b) => {
    await b.transaction(
      async (tx) => {
        await expectStorageError(() => tx.put("ro/new", V1), StorageErrorCode.READ_ONLY);
      },
      { readOnly: true },
    );
    expect(await b.exists("ro/new")).toBe(false);
  });

  test("a read-only transaction rejects delete with READ_ONLY", async (b) => {
    await b.put("ro/kept", V1);
    await b.transaction(
      async (tx) => {
        await expectStorageError(() => tx.delete("ro/kept"), StorageErrorCode.READ_ONLY);
        expect(await tx.exists("ro/kept")).toBe(true);
      },
      { readOnly: true },
    );
    expect(hexOrNull(await b.get("ro/kept"))).toBe(hexOrNull(V1));
  });

  test("a read-only transaction reads get, exists, list and listPage", async (b) => {
    await b.put("ro/a", V1);
    await b.put("ro/b/c", V2);
    const seen = await b.transaction(
      async (tx) => ({
        a: hexOrNull(await tx.get("ro/a")),
        missing: await tx.get("ro/missing"),
        exists: await tx.exists("ro/a"),
        list: await tx.list("ro/"),
        page: await tx.listPage("ro/", "a", 5),
      }),
      { readOnly: true },
    );
    expect(seen).toEqual({ a: hexOrNull(V1), missing: null, exists: true, list: ["a", "b/"], page: ["b/"] });
  });

  test("a read-only transaction whose callback swallowed READ_ONLY still writes nothing", async (b) => {
    await b.put("ro/stay", V1);
    await b.transaction(
      async (tx) => {
        await tx.put("ro/stay", V2).catch(() => undefined);
        await tx.delete("ro/stay").catch(() => undefined);
        await tx.put("ro/extra", V2).catch(() => undefined);
      },
      { readOnly: true },
    );
    expect(hexOrNull(await b.get("ro/stay"))).toBe(hexOrNull(V1));
    expect(await b.exists("ro/extra")).toBe(false);
  });

  test("an invalid key inside a transaction is INVALID_KEY, and a rethrow rolls back", async (b) => {
    await expect(
      b.transaction(async (tx) => {
        await tx.put("valid/one", V1);
        await expectStorageError(() => tx.put("bad//key", V1), StorageErrorCode.INVALID_KEY);
        await expectStorageError(() => tx.get("/bad"), StorageErrorCode.INVALID_KEY);
        await expectStorageError(() => tx.delete("bad/"), StorageErrorCode.INVALID_KEY);
        await expectStorageError(() => tx.exists(".."), StorageErrorCode.INVALID_KEY);
        await expectStorageError(() => tx.list("/x"), StorageErrorCode.INVALID_KEY);
        await expectStorageError(() => tx.listPage("a//", "", 1), StorageErrorCode.INVALID_KEY);
        throw new CallerError("abort");
      }),
    ).rejects.toBeInstanceOf(CallerError);
    expect(await collectScan(b, "")).toEqual([]);
  });

  test("a rejected write does not spoil the rest of its transaction", async (b) => {
    await b.transaction(async (tx) => {
      await tx.put("ok/before", V1);
      await tx.put("bad//key", V1).catch(() => undefined);
      await tx.put("ok/after", V2);
    });
    expect((await collectScan(b, "")).map((entry) => entry.key)).toEqual(["ok/after", "ok/before"]);
  });

  test("an open transaction's put is invisible to an outside get until commit", async (b) => {
    await b.put("iso/k", V1);
    const held = await holdOpenTransaction(b, async (tx) => {
      await tx.put("iso/k", V2);
      expect(hexOrNull(await tx.get("iso/k"))).toBe(hexOrNull(V2));
    });
    const outside = b.get("iso/k");
    try {
      const early = await readOrPending(outside);
      // A backend may queue outside reads behind the writer; one that answers must answer v1.
      if (early !== "pending") expect(hexOrNull(early.value)).toBe(hexOrNull(V1));
    } finally {
      held.release();
    }
    expect(await held.done).toBe("committed");
    expect(hexOrNull(await b.get("iso/k"))).toBe(hexOrNull(V2));
    expect([hexOrNull(V1), hexOrNull(V2)]).toContain(hexOrNull(await outside));
  });

  test("an open transaction's new key is invisible to outside list, exists and scan", async (b) => {
    await b.put("iso/old", V1);
    const held = await holdOpenTransaction(b, async (tx) => {
      await tx.put("iso/new", V2);
      await tx.delete("iso/old");
    });
    const list = b.list("iso/");
    const exists = b.exists("iso/new");
    const scan = collectScan(b, "iso/");
    try {
      const [earlyList, earlyExists, earlyScan] = await Promise.all([readOrPending(list), readOrPending(exists), readOrPending(scan)]);
      if (earlyList !== "pending") expect(earlyList.value).toEqual(["old"]);
      if (earlyExists !== "pending") expect(earlyExists.value).toBe(false);
      if (earlyScan !== "pending") expect(earlyScan.value.map((entry) => entry.key)).toEqual(["iso/old"]);
    } finally {
      held.release();
    }
    expect(await held.done).toBe("committed");
    expect(await b.list("iso/")).toEqual(["new"]);
    // Reads that waited saw the state before or after the commit, never a mix.
    expect([["old"], ["new"]]).toContainEqual(await list);
    expect([["iso/old"], ["iso/new"]]).toContainEqual((await scan).map((entry) => entry.key));
    expect(typeof (await exists)).toBe("boolean");
  });

  test("an open transaction that rolls back is never visible outside", async (b) => {
    await b.put("iso/k", V1);
    const held = await holdOpenTransaction(
      b,
      async (tx) => {
        await tx.put("iso/k", V2);
        await tx.put("iso/ghost", V2);
      },
      true,
    );
    const outside = b.get("iso/k");
    const ghost = b.exists("iso/ghost");
    try {
      const early = await readOrPending(outside);
      if (early !== "pending") expect(hexOrNull(early.value)).toBe(hexOrNull(V1));
    } finally {
      held.release();
    }
    expect(await held.done).toBe("rolled back");
    expect(hexOrNull(await outside)).toBe(hexOrNull(V1));
    expect(await ghost).toBe(false);
    expect(hexOrNull(await b.get("iso/k"))).toBe(hexOrNull(V1));
    expect(await b.exists("iso/ghost")).toBe(false);
  });
}
