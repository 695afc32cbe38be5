import { StorageError, StorageErrorCode, getValues } from "@egide/storage-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PostgresBackend } from "../src/index.js";
import { RoundTripCounter } from "./support/round-trip-counter.js";
import { createTestDatabase, type TestDatabase } from "./support/postgres-server.js";

const value = (text: string) => Buffer.from(text, "utf8");

/** The StorageError code `promise` rejects with (fails the test if it resolves or throws something else). */
async function failureCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(StorageError.isInstance(error), `expected a StorageError, got ${String(error)}`).toBe(true);
    return (error as StorageError).code;
  }
  throw new Error("expected a failure");
}

describe("getMany", () => {
  let database: TestDatabase;
  let counter: RoundTripCounter;
  let backend: PostgresBackend;

  beforeAll(async () => {
    database = await createTestDatabase("get_many");
    counter = new RoundTripCounter();
    const { host, port } = await counter.start();
    // Through the counting proxy (plain text, so it can read the protocol); one connection, so
    // every round trip of a call is on it.
    backend = await PostgresBackend.open({ ...database.connection, host, port, sslMode: "disable", poolMin: 0, poolMax: 1 });
    await backend.put("a/1", value("one"));
    await backend.put("a/2", value("two"));
    await backend.put("a/3", value("three"));
  }, 30_000);

  afterAll(async () => {
    await backend?.close();
    await counter?.close();
    await database?.drop();
  });

  beforeEach(() => counter.reset());

  it("answers in the order asked, null for absent keys, duplicates allowed, in one round trip", async () => {
    // Warm the pool so the count is of this call only.
    await backend.get("a/1");
    counter.reset();
    const values = await backend.getMany(["a/3", "missing/x", "a/1", "a/3", "a/2"]);
    expect(counter.roundTrips).toBe(1);
    expect(values).toEqual([value("three"), null, value("one"), value("three"), value("two")]);
    // A key asked twice gets two Buffers: changing one leaves the other alone.
    expect(values[0]).not.toBe(values[3]);
  });

  it("answers [] for no keys without a round trip", async () => {
    expect(await backend.getMany([])).toEqual([]);
    expect(await getValues(backend, [])).toEqual([]);
    expect(counter.roundTrips).toBe(0);
  });

  it("reads many keys in one statement", async () => {
    const keys = Array.from({ length: 2000 }, (_, n) => `many/${String(n).padStart(5, "0")}`);
    await backend.transaction(async (tx) => {
      await tx.putMany?.(keys.filter((_, n) => n % 2 === 0).map((key) => ({ key, value: value(key) })));
    });
    await backend.get("a/1");
    counter.reset();
    const values = await backend.getMany(keys);
    expect(counter.roundTrips).toBe(1);
    expect(values).toEqual(keys.map((key, n) => (n % 2 === 0 ? value(key) : null)));
  });

  it("checks every key as get does, before any round trip", async () => {
    for (const bad of ["", "/lead", "a//b", "a/../b", "ctl\u0001", "x".repeat(2000)]) {
      expect(await failureCode(backend.getMany(["a/1", bad]))).toBe(StorageErrorCode.INVALID_KEY);
      expect(await failureCode(backend.get(bad))).toBe(StorageErrorCode.INVALID_KEY);
    }
    expect(counter.roundTrips).toBe(0);
  });

  it("in a transaction: runs on the transaction's connection and sees its own writes", async () => {
    await backend.transaction(async (tx) => {
      await tx.put("a/4", value("four"));
      await tx.delete("a/2");
      counter.reset();
      expect(await tx.getMany?.(["a/4", "a/2", "a/1", "a/4"])).toEqual([value("four"), null, value("one"), value("four")]);
      expect(counter.roundTrips).toBe(1);
      expect(await tx.getMany?.([])).toEqual([]);
      expect(counter.roundTrips).toBe(1);
      // Outside, the transaction's writes are not visible yet (and the pool has only this one
      // connection, so the read waits for the commit: read it after).
    });
    expect(await backend.getMany(["a/4", "a/2"])).toEqual([value("four"), null]);
  });

  it("in a transaction: checks keys, and is CLOSED once the callback settled", async () => {
    let leaked: { getMany?: (keys: readonly string[]) => Promise<(Buffer | null)[]> } | undefined;
    await backend.transaction(async (tx) => {
      leaked = tx;
      expect(await failureCode(tx.getMany?.(["a/1", "bad//key"]) ?? Promise.resolve())).toBe(StorageErrorCode.INVALID_KEY);
    });
    expect(await failureCode(leaked?.getMany?.(["a/1"]) ?? Promise.resolve())).toBe(StorageErrorCode.CLOSED);
    expect(await failureCode(leaked?.getMany?.([]) ?? Promise.resolve())).toBe(StorageErrorCode.CLOSED);
  });

  it("in a read-only transaction: reads one snapshot", async () => {
    const values = await backend.transaction((tx) => tx.getMany?.(["a/1", "a/3"]) ?? Promise.resolve([]), { readOnly: true });
    expect(values).toEqual([value("one"), value("three")]);
  });

  it("is offered by the backend and its transactions, and is CLOSED after close", async () => {
    expect(typeof backend.getMany).toBe("function");
    await backend.transaction(async (tx) => {
      expect(typeof tx.getMany).toBe("function");
    });
    const other = await PostgresBackend.open({ ...database.connection, poolMin: 0, poolMax: 1 });
    await other.close();
    expect(await failureCode(other.getMany(["a/1"]))).toBe(StorageErrorCode.CLOSED);
    expect(await failureCode(other.getMany([]))).toBe(StorageErrorCode.CLOSED);
  });
});
