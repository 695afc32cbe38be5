import { expect, it } from "vitest";
import { MAX_KEY_BYTES, StorageError, StorageErrorCode, putEntries } from "@egide/storage-core";
import type { ScanEntry, StorageBackend, Transaction } from "@egide/storage-core";
import type { ConformanceContext } from "./conformance-context.js";
import { expectStorageError } from "./expect-storage-error.js";
import { holdOpenTransaction, readOrPending } from "./hold-open-transaction.js";
import { nextTurn } from "./sleep.js";
import { SLOW_TEST_TIMEOUT_MS, TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { hexOrNull, utf8 } from "./utf8.js";

type GetMany = (keys: readonly string[]) => Promise<(Buffer | null)[]>;

/** Key shapes `get` rejects; `getMany` must reject each the same way, wherever it stands in the list. */
const INVALID_KEYS: readonly [string, unknown][] = [
  ["empty", ""],
  ["leading slash", "/a"],
  ["trailing slash", "a/"],
  ["empty segment", "a//b"],
  ["dot-dot segment", "a/../b"],
  ["NUL", "a\u0000b"],
  ["C1 control (NEL)", "\u0085"],
  ["lone high surrogate", "a\ud800"],
  ["1025 bytes", "k".repeat(MAX_KEY_BYTES + 1)],
  ["number", 42],
  ["null", null],
];

/** Keys a bulk read must match exactly: wildcards, escapes, quotes, astral and unnormalised text. */
const SPECIAL_KEYS: readonly string[] = [
  "a%b",
  "a_b",
  "a\\b",
  "it's",
  'say "hi"',
  "😀/𝄞",
  "caf\u00e9",
  "cafe\u0301",
  "x'; DROP TABLE kv; --",
];

/** The backend's `getMany`, or a failure saying it is declared but missing. */
function backendGetMany(backend: StorageBackend): GetMany {
  const getMany = backend.getMany;
  if (typeof getMany !== "function") throw new Error("capabilities.getMany declares backend.getMany(), which this backend does not have");
  return (keys) => getMany.call(backend, keys);
}

/** The transaction's `getMany`, or a failure saying it is declared but missing. */
function transactionGetMany(tx: Transaction): GetMany {
  const getMany = tx.getMany;
  if (typeof getMany !== "function")
    throw new Error("capabilities.getMany declares Transaction.getMany(), which this transaction does not have");
  return (keys) => getMany.call(tx, keys);
}

/** Read values in a printable form; also checks that every present value is a Buffer, as `get` returns. */
function hexes(values: readonly (Buffer | null)[]): (string | null)[] {
  for (const value of values) if (value !== null) expect(Buffer.isBuffer(value), "getMany returns Buffers").toBe(true);
  return values.map(hexOrNull);
}

/** One `get` after another, the reads `getMany` must agree with. */
async function getEach(reader: Pick<StorageBackend | Transaction, "get">, keys: readonly string[]): Promise<(string | null)[]> {
  const values: (string | null)[] = [];
  for (const key of keys) values.push(hexOrNull(await reader.get(key)));
  return values;
}

/** The error `get` rejects `key` with (it must reject). */
async function getError(reader: Pick<StorageBackend | Transaction, "get">, key: unknown): Promise<StorageError> {
  const failure = await reader.get(key as string).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!StorageError.isInstance(failure)) throw new Error(`get(${String(key)}) must reject with a StorageError, got ${String(failure)}`);
  return failure;
}

/** A deterministic sequence of small numbers, so a failing run can be replayed. */
function numbers(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state >>> 8;
  };
}

/**
 * `getMany`, on the backend and in transactions, when the backend declares it: the values in
 * the order asked (`null` where absent, a key asked twice answered twice), exactly what `get`
 * answers key by key, the same `INVALID_KEY` as `get`, one consistent read, a transaction's
 * own uncommitted puts and deletes, and `CLOSED` after close or settlement.
 */
export function exerciseGetMany(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>, timeout = TEST_TIMEOUT_MS): void => {
    it(title, () => body(context.backend()), timeout);
  };
  const { backendGetMany: onBackend, transactionGetMany: inTransactions } = context.options.capabilities;

  if (onBackend) {
    test("getMany returns the values in the order asked, null for an absent key", async (b) => {
      const getMany = backendGetMany(b);
      await b.put("gm/a", utf8("A"));
      await b.put("gm/b", utf8("B"));
      await b.put("gm/c", utf8("C"));
      expect(hexes(await getMany(["gm/c", "gm/absent", "gm/a", "gm/b"]))).toEqual([
        hexOrNull(utf8("C")),
        null,
        hexOrNull(utf8("A")),
        hexOrNull(utf8("B")),
      ]);
      expect(hexes(await getMany(["gm/absent", "gm/none"]))).toEqual([null, null]);
    });

    test("getMany answers a key asked several times at each place it is asked", async (b) => {
      const getMany = backendGetMany(b);
      await b.put("dup/a", utf8("A"));
      const a = hexOrNull(utf8("A"));
      expect(hexes(await getMany(["dup/a", "dup/x", "dup/a", "dup/a", "dup/x"]))).toEqual([a, null, a, a, null]);
      expect(hexes(await getMany(["dup/x", "dup/x"]))).toEqual([null, null]);
    });

    test("getMany of no key is an empty array", async (b) => {
      const getMany = backendGetMany(b);
      expect(await getMany([])).toEqual([]);
      await b.put("k", utf8("v"));
      expect(await getMany([])).toEqual([]);
    });

    test("getMany returns an empty value as an empty Buffer, not null", async (b) => {
      const getMany = backendGetMany(b);
      await b.put("empty", new Uint8Array(0));
      const [value] = await getMany(["empty"]);
      expect(Buffer.isBuffer(value)).toBe(true);
      expect(value?.length).toBe(0);
    });

    test("getMany tells a key from a folder of that name and from keys it prefixes", async (b) => {
      const getMany = backendGetMany(b);
      await b.put("foo/bar", utf8("child"));
      await b.put("foobar", utf8("sibling"));
      expect(hexes(await getMany(["foo", "fo", "foo/bar", "foo/ba", "foobar", "foo/bar/baz"]))).toEqual([
        null,
        null,
        hexOrNull(utf8("child")),
        null,
        hexOrNull(utf8("sibling")),
        null,
      ]);
    });

    test("getMany matches special keys exactly: no wildcard, no escape, no normalisation", async (b) => {
      const getMany = backendGetMany(b);
      for (const key of SPECIAL_KEYS) await b.put(key, utf8(`value of ${key}`));
      const asked = [...SPECIAL_KEYS, "axb", "a\\\\b", "a%", "caf", "😀"].reverse();
      const expected = asked.map((key) => (SPECIAL_KEYS.includes(key) ? hexOrNull(utf8(`value of ${key}`)) : null));
      expect(hexes(await getMany(asked))).toEqual(expected);
    });

    for (const [label, bad] of INVALID_KEYS) {
      test(`getMany rejects an invalid key (${label}) with the error get gives it`, async (b) => {
        const getMany = backendGetMany(b);
        await b.put("ok", utf8("v"));
        const fromGet = await getError(b, bad);
        await expectStorageError(() => getMany(["ok", bad as string, "ok"]), fromGet.code);
        await expectStorageError(() => getMany([bad as string]), fromGet.code);
      });
    }

    test("getMany agrees with get, key by key, after puts, overwrites and deletes", async (b) => {
      const getMany = backendGetMany(b);
      const next = numbers(20260501);
      const keys = [...SPECIAL_KEYS];
      for (let i = 0; i < 48; i++) keys.push(`mix/f${i % 5}/k${i}`);
      for (let round = 0; round < 4; round++) {
        for (const key of keys) {
          const roll = next() % 5;
          if (roll === 0) await b.delete(key);
          else if (roll === 1) await b.put(key, new Uint8Array(0));
          else if (roll === 2) continue;
          else await b.put(key, utf8(`${key} in round ${round}`));
        }
        const asked = keys.filter(() => next() % 3 !== 0);
        asked.push("mix/absent", keys[next() % keys.length]!, keys[next() % keys.length]!);
        asked.reverse();
        expect(hexes(await getMany(asked)), `round ${round}`).toEqual(await getEach(b, asked));
      }
    });

    test(
      "getMany of 2,500 keys, half of them absent",
      async (b) => {
        const getMany = backendGetMany(b);
        const key = (i: number) => `many/${String(i).padStart(4, "0")}`;
        const entries: ScanEntry[] = [];
        for (let i = 0; i < 2500; i += 2) entries.push({ key: key(i), value: utf8(`v${i}`) });
        await b.transaction((tx) => putEntries(tx, entries));
        const asked = Array.from({ length: 2500 }, (_, i) => key(2499 - i));
        const values = hexes(await getMany(asked));
        expect(values).toHaveLength(2500);
        for (const [at, value] of values.entries()) {
          const i = 2499 - at;
          expect(value, key(i)).toBe(i % 2 === 0 ? hexOrNull(utf8(`v${i}`)) : null);
        }
      },
      SLOW_TEST_TIMEOUT_MS,
    );

    test("getMany returns copies: changing a returned value changes nothing stored", async (b) => {
      const getMany = backendGetMany(b);
      await b.put("copy", utf8("original"));
      const [first] = await getMany(["copy"]);
      first?.fill(0);
      expect((await b.get("copy"))?.toString()).toBe("original");
      expect((await getMany(["copy"]))[0]?.toString()).toBe("original");
    });

    test(
      "getMany is one consistent read: a concurrent transaction is seen whole or not at all",
      async (b) => {
        const getMany = backendGetMany(b);
        const keys = ["pair/a", "pair/b", "pair/c"];
        await b.transaction(async (tx) => {
          for (const key of keys) await tx.put(key, utf8("0"));
        });
        let writing = true;
        const writer = (async () => {
          try {
            for (let i = 1; i <= 30; i++) {
              await b.transaction(async (tx) => {
                for (const key of keys) await tx.put(key, utf8(String(i)));
              });
            }
          } finally {
            writing = false;
          }
        })();
        const seen: string[] = [];
        while (writing) {
          const values = (await getMany(keys)).map((value) => value?.toString() ?? "null");
          if (new Set(values).size !== 1) seen.push(values.join(","));
          await nextTurn();
        }
        await writer;
        expect(seen, "reads that mixed two commits").toEqual([]);
        expect((await getMany(keys)).map((value) => value?.toString())).toEqual(["30", "30", "30"]);
      },
      SLOW_TEST_TIMEOUT_MS,
    );

    test("an outside getMany does not see an open transaction's writes", async (b) => {
      const getMany = backendGetMany(b);
      await b.put("iso/k", utf8("v1"));
      const held = await holdOpenTransaction(b, async (tx) => {
        await tx.put("iso/k", utf8("v2"));
        await tx.put("iso/new", utf8("v2"));
      });
      const outside = getMany(["iso/k", "iso/new"]);
      const before = [hexOrNull(utf8("v1")), null];
      const after = [hexOrNull(utf8("v2")), hexOrNull(utf8("v2"))];
      try {
        const early = await readOrPending(outside);
        // A backend may queue outside reads behind the writer; one that answers must answer the committed state.
        if (early !== "pending") expect(hexes(early.value)).toEqual(before);
      } finally {
        held.release();
      }
      expect(await held.done).toBe("committed");
      expect([before, after]).toContainEqual(hexes(await outside));
      expect(hexes(await getMany(["iso/k", "iso/new"]))).toEqual(after);
    });

    test("getMany after close() fails with CLOSED", async (b) => {
      const getMany = backendGetMany(b);
      await b.put("k", utf8("v"));
      await b.close();
      await expectStorageError(() => getMany(["k"]), StorageErrorCode.CLOSED);
    });
  }

  if (inTransactions) {
    test("getMany in a transaction sees its own uncommitted puts and deletes, in the order asked", async (b) => {
      for (const name of ["a", "b", "c"]) await b.put(`tx/${name}`, utf8(`${name}0`));
      const h = (text: string) => hexOrNull(utf8(text));
      await b.transaction(async (tx) => {
        const getMany = transactionGetMany(tx);
        expect(hexes(await getMany(["tx/a", "tx/b", "tx/c", "tx/d"]))).toEqual([h("a0"), h("b0"), h("c0"), null]);
        await tx.put("tx/a", utf8("a1"));
        await tx.delete("tx/b");
        await tx.put("tx/d", utf8("d1"));
        await tx.put("tx/e", new Uint8Array(0));
        const asked = ["tx/d", "tx/c", "tx/b", "tx/a", "tx/e", "tx/a", "tx/none", "tx/b"];
        const values = hexes(await getMany(asked));
        expect(values).toEqual([h("d1"), h("c0"), null, h("a1"), "", h("a1"), null, null]);
        expect(values).toEqual(await getEach(tx, asked));
        expect(await getMany([])).toEqual([]);
        // A key put back after its delete is seen again.
        await tx.put("tx/b", utf8("b2"));
        expect(hexes(await getMany(["tx/b"]))).toEqual([h("b2")]);
      });
      expect(await getEach(b, ["tx/a", "tx/b", "tx/c", "tx/d", "tx/e"])).toEqual([h("a1"), h("b2"), h("c0"), h("d1"), ""]);
    });

    test("getMany in a transaction that rolls back saw its writes, and none of them remains", async (b) => {
      await b.put("rb/kept", utf8("k0"));
      const failure = new Error("roll back");
      await expect(
        b.transaction(async (tx) => {
          const getMany = transactionGetMany(tx);
          await tx.put("rb/new", utf8("n"));
          await tx.delete("rb/kept");
          expect(hexes(await getMany(["rb/kept", "rb/new"]))).toEqual([null, hexOrNull(utf8("n"))]);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await getEach(b, ["rb/kept", "rb/new"])).toEqual([hexOrNull(utf8("k0")), null]);
    });

    test("getMany in a read-only transaction reads the committed values", async (b) => {
      await b.put("ro/a", utf8("A"));
      await b.put("ro/b", utf8("B"));
      const values = await b.transaction(async (tx) => hexes(await transactionGetMany(tx)(["ro/b", "ro/x", "ro/a", "ro/b"])), {
        readOnly: true,
      });
      expect(values).toEqual([hexOrNull(utf8("B")), null, hexOrNull(utf8("A")), hexOrNull(utf8("B"))]);
    });

    test("getMany in a transaction rejects an invalid key with the error get gives it, and the transaction goes on", async (b) => {
      await b.transaction(async (tx) => {
        const getMany = transactionGetMany(tx);
        await tx.put("ok", utf8("v"));
        for (const [label, bad] of INVALID_KEYS) {
          const fromGet = await getError(tx, bad);
          const error = await expectStorageError(() => getMany(["ok", bad as string]), fromGet.code);
          expect(error.code, label).toBe(fromGet.code);
        }
        expect(hexes(await getMany(["ok"]))).toEqual([hexOrNull(utf8("v"))]);
      });
      expect((await b.get("ok"))?.toString()).toBe("v");
    });

    for (const readOnly of [false, true]) {
      test(`getMany on a ${readOnly ? "read-only " : ""}transaction after it settled fails with CLOSED`, async (b) => {
        await b.put("k", utf8("v"));
        let captured: Transaction | undefined;
        await b.transaction(
          async (tx) => {
            captured = tx;
            await transactionGetMany(tx)(["k"]);
          },
          { readOnly },
        );
        const getMany = transactionGetMany(captured as Transaction);
        await expectStorageError(() => getMany(["k"]), StorageErrorCode.CLOSED);
      });
    }
  }
}
