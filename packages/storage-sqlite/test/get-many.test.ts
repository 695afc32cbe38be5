import { StorageError, getValues } from "@egide/storage-core";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteBackend, type SqliteOptions } from "../src/index.js";
import { tempDirectory } from "./temp-database.js";

const temp = tempDirectory("sqlite-get-many");
afterAll(() => temp.remove());

const configurations: Array<[string, () => SqliteOptions]> = [
  ["file, WAL", () => ({ path: temp.file() })],
  ["file, DELETE journal", () => ({ path: temp.file(), journalMode: "DELETE" })],
  [":memory:", () => ({ path: ":memory:" })],
];

function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe.each(configurations)("getMany (%s)", (_label, options) => {
  it("answers in the order asked, null for absent keys, a key asked twice twice", async () => {
    const backend = SqliteBackend.open(options());
    await backend.put("a/1", Buffer.from("one"));
    await backend.put("a/2", Buffer.from("two"));
    await backend.put("b", Buffer.from("bee"));
    const values = await backend.getMany(["b", "missing", "a/1", "a/2", "a/1", "a/missing"]);
    expect(values).toEqual([Buffer.from("bee"), null, Buffer.from("one"), Buffer.from("two"), Buffer.from("one"), null]);
    // A duplicate is a copy of its own: wiping one answer leaves the other intact.
    expect(values[2]).not.toBe(values[4]);
    (values[2] as Buffer).fill(0);
    expect(values[4]).toEqual(Buffer.from("one"));
    expect(await backend.getMany([])).toEqual([]);
    expect(await backend.getMany(["missing"])).toEqual([null]);
    expect(await backend.getMany(["a/2"])).toEqual([Buffer.from("two")]);
    expect(await getValues(backend, ["a/2", "b"])).toEqual([Buffer.from("two"), Buffer.from("bee")]);
    await backend.close();
  });

  it("finds keys whose characters mean something in JSON or SQL", async () => {
    const backend = SqliteBackend.open(options());
    const keys = ['q"uote', "back\\slash", "per%cent_under", "émoji/🔑", "comma,]", "'single'", "tab-less unicode \u2028 line"];
    for (const [i, key] of keys.entries()) await backend.put(key, Buffer.from(String(i)));
    expect(await backend.getMany([...keys].reverse())).toEqual(keys.map((_, i) => Buffer.from(String(i))).reverse());
    // Bytes equal, never collated: a case or normalisation variant is another key.
    expect(await backend.getMany(['Q"uote', "e\u0301moji/🔑"])).toEqual([null, null]);
    await backend.close();
  });

  it("reads more keys than SQLite has bound variables (32766), in one call", async () => {
    const backend = SqliteBackend.open(options());
    await backend.transaction(async (tx) => {
      for (let i = 0; i < 40_000; i += 7) await tx.put(`k/${i}`, Buffer.from(String(i)));
    });
    const keys = Array.from({ length: 40_000 }, (_, i) => `k/${i}`);
    const values = await backend.getMany(keys);
    expect(values).toHaveLength(40_000);
    const wrong = values.filter((value, i) => String(value ?? "") !== (i % 7 === 0 ? String(i) : ""));
    expect(wrong).toEqual([]);
    await backend.close();
  });

  it("checks every key as get does, and reads nothing when one is bad", async () => {
    const backend = SqliteBackend.open(options());
    await backend.put("good", Buffer.from("v"));
    for (const bad of ["", "/leading", "trailing/", "a//b", "a/../b", "ctrl\u0001", "lone\ud800", "x".repeat(2048), 42]) {
      const error = await failure(backend.getMany(["good", bad as string]));
      expect(StorageError.isInstance(error, "INVALID_KEY"), `key ${JSON.stringify(bad)}`).toBe(true);
      expect(StorageError.isInstance(await failure(backend.get(bad as string)), "INVALID_KEY")).toBe(true);
    }
    await backend.close();
  });

  it("sees a transaction's own puts and deletes, in read-write transactions", async () => {
    const backend = SqliteBackend.open(options());
    await backend.put("kept", Buffer.from("old"));
    await backend.put("gone", Buffer.from("old"));
    const seen = await backend.transaction(async (tx) => {
      await tx.put("kept", Buffer.from("new"));
      await tx.delete("gone");
      await tx.put("added", Buffer.from("fresh"));
      return tx.getMany?.(["gone", "kept", "added", "kept", "never"]);
    });
    expect(seen).toEqual([null, Buffer.from("new"), Buffer.from("fresh"), Buffer.from("new"), null]);
    await backend.close();
  });

  it("reads a read-only transaction's snapshot", async () => {
    const backend = SqliteBackend.open(options());
    await backend.put("x", Buffer.from("1"));
    const seen = await backend.transaction(async (tx) => [await tx.getMany?.(["x", "y"]), await tx.getMany?.([])], { readOnly: true });
    expect(seen).toEqual([[Buffer.from("1"), null], []]);
    await backend.close();
  });

  it("refuses bad keys and a closed transaction in a transaction", async () => {
    const backend = SqliteBackend.open(options());
    let leaked: { getMany?: (keys: readonly string[]) => Promise<(Buffer | null)[]> } | undefined;
    const badKey = await backend.transaction(async (tx) => {
      leaked = tx;
      return failure(tx.getMany?.(["ok", "bad//key"]) as Promise<unknown>);
    });
    expect(StorageError.isInstance(badKey, "INVALID_KEY")).toBe(true);
    expect(StorageError.isInstance(await failure(leaked?.getMany?.(["ok"]) as Promise<unknown>), "CLOSED")).toBe(true);
    expect(StorageError.isInstance(await failure(leaked?.getMany?.([]) as Promise<unknown>), "CLOSED")).toBe(true);
    await backend.close();
  });

  it("does not see an open transaction's uncommitted writes", async () => {
    const backend = SqliteBackend.open(options());
    await backend.put("x", Buffer.from("committed"));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const inside = new Promise<void>((resolve) => (started = resolve));
    const open = backend.transaction(async (tx) => {
      await tx.put("x", Buffer.from("uncommitted"));
      await tx.put("y", Buffer.from("uncommitted"));
      started();
      await gate;
    });
    await inside;
    // On a file the read does not wait for the transaction; on :memory: it waits for its commit.
    const read = backend.getMany(["x", "y"]);
    release();
    await open;
    const expected = options().path === ":memory:" ? ["uncommitted", "uncommitted"] : ["committed", null];
    expect(await read).toEqual(expected.map((value) => (value === null ? null : Buffer.from(value))));
    await backend.close();
  });

  it("rejects with CLOSED once the backend is closed", async () => {
    const backend = SqliteBackend.open(options());
    await backend.close();
    expect(StorageError.isInstance(await failure(backend.getMany(["a"])), "CLOSED")).toBe(true);
    expect(StorageError.isInstance(await failure(backend.getMany([])), "CLOSED")).toBe(true);
  });
});
