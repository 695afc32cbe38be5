import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capabilityDifferences, requiredBackend, requiredTransaction } from "@egide/storage-conformance";
import { StorageErrorCode, getValues } from "@egide/storage-core";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { KEYRING_KEY, SEAL_CONFIG_KEY, SealManager, barrier } from "../src/index.js";
import { expectRejectedStorageError } from "./support/expect-errors.js";

// getMany through the barrier. wrapStorage forwards a backend's getMany by default, which over
// the barrier would hand out ciphertext; the barrier overrides it (on the backend and on its
// transactions) to check keys and seal as get does, read once, and decrypt every record.
//
// The SQLite backend itself has no getMany, so these tests put a small decorator between it and
// the barrier that adds one (get for each key, concurrently) and records each call: the values
// it returns are the raw records, so plaintext coming out of the barrier proves it decrypted.

const dir = mkdtempSync(join(tmpdir(), "egide-barrier-get-many-"));
let files = 0;
const file = () => join(dir, `get-many-${++files}.sqlite`);
const opened: StorageBackend[] = [];

afterEach(async () => {
  for (const backend of opened.splice(0)) await backend.close();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** `raw` with only the required members, plus a getMany on it and on its transactions; every call's keys are kept in `calls`. */
function withGetMany(raw: StorageBackend): { backend: StorageBackend; calls: string[][]; txCalls: string[][] } {
  const calls: string[][] = [];
  const txCalls: string[][] = [];
  const backend = requiredBackend(raw);
  backend.getMany = (keys) => {
    calls.push([...keys]);
    return Promise.all(keys.map((key) => raw.get(key)));
  };
  backend.transaction = (fn, options) =>
    raw.transaction((tx: Transaction) => {
      const extended = requiredTransaction(tx);
      extended.getMany = (keys) => {
        txCalls.push([...keys]);
        // One after another: the transaction of a SQLite backend runs its statements in turn.
        return keys.reduce<Promise<(Buffer | null)[]>>(
          (done, key) => done.then(async (values) => [...values, await tx.get(key)]),
          Promise.resolve([]),
        );
      };
      return fn(extended);
    }, options);
  return { backend, calls, txCalls };
}

/** A SQLite file, its seal manager (initialised, unsealed) and the barrier over the getMany decorator. */
async function openStack(path = file()) {
  const raw = SqliteBackend.open({ path });
  opened.push(raw);
  const seal = await SealManager.open(raw);
  const { shares } = await seal.initialize({ shares: 1, threshold: 1 });
  const share = shares[0] as Buffer;
  await seal.unseal(share);
  const inner = withGetMany(raw);
  return { path, raw, seal, share, ...inner, b: barrier(inner.backend, seal) };
}

const VALUES: Record<string, Buffer> = {
  "app/a": Buffer.from("PLAINTEXT-GET-MANY-alpha"),
  "app/b": Buffer.alloc(4096, "PLAINTEXT-GET-MANY-beta"),
  "app/nested/c": Buffer.from("PLAINTEXT-GET-MANY-gamma"),
  "app/empty": Buffer.alloc(0),
};

async function writeValues(b: StorageBackend): Promise<void> {
  for (const [key, value] of Object.entries(VALUES)) await b.put(key, value);
}

describe("getMany through the barrier", () => {
  it("returns what get returns, in order, with nulls for absent keys, in one read of the backend", async () => {
    const { raw, b, calls } = await openStack();
    await writeValues(b);
    const keys = ["app/b", "app/missing", "app/a", "app/empty", "app/nested/c", "app/a", "nowhere/at/all"];
    expect(typeof b.getMany).toBe("function");
    const values = await b.getMany?.(keys);
    expect(calls).toEqual([keys]);
    expect(values).toHaveLength(keys.length);
    for (const [i, key] of keys.entries()) expect(values?.[i], key).toEqual(await b.get(key));
    expect(values).toEqual([VALUES["app/b"], null, VALUES["app/a"], Buffer.alloc(0), VALUES["app/nested/c"], VALUES["app/a"], null]);
    // What the decorator beneath returned was ciphertext: the barrier decrypted it.
    for (const key of Object.keys(VALUES)) {
      const record = await raw.get(key);
      expect(record?.equals(VALUES[key] as Buffer)).toBe(false);
      expect(record?.includes("PLAINTEXT-GET-MANY")).toBe(false);
    }
    // getValues takes the same path; no keys, no read.
    expect(await getValues(b, ["app/a", "app/missing"])).toEqual([VALUES["app/a"], null]);
    expect(calls).toHaveLength(2);
    expect(await getValues(b, [])).toEqual([]);
    expect(calls).toHaveLength(2);
  });

  it("refuses reserved and invalid keys as get does, before reading anything", async () => {
    const { b, calls } = await openStack();
    await writeValues(b);
    for (const reserved of [KEYRING_KEY, SEAL_CONFIG_KEY, ".egide/anything"]) {
      await expectRejectedStorageError(() => b.get(reserved), StorageErrorCode.INVALID_KEY, `get ${reserved}`);
      await expectRejectedStorageError(() => b.getMany?.(["app/a", reserved]), StorageErrorCode.INVALID_KEY, `getMany ${reserved}`);
    }
    for (const invalid of ["", "/app/a", "app//a", "app/../a"]) {
      await expectRejectedStorageError(() => b.getMany?.(["app/a", invalid]), StorageErrorCode.INVALID_KEY, `invalid ${invalid}`);
    }
    expect(calls).toEqual([]);
  });

  it("fails with SEALED while sealed, without reading", async () => {
    const { seal, share, b, calls } = await openStack();
    await writeValues(b);
    seal.seal();
    await expectRejectedStorageError(() => b.get("app/a"), StorageErrorCode.SEALED, "get");
    await expectRejectedStorageError(() => b.getMany?.(["app/a", "app/missing"]), StorageErrorCode.SEALED, "getMany");
    await expectRejectedStorageError(() => b.getMany?.([]), StorageErrorCode.SEALED, "getMany of no keys");
    expect(calls).toEqual([]);
    // A reserved key is refused as such, sealed or not, as get does.
    await expectRejectedStorageError(() => b.getMany?.([KEYRING_KEY]), StorageErrorCode.INVALID_KEY, "reserved while sealed");
    await seal.unseal(share);
    expect(await b.getMany?.(["app/a"])).toEqual([VALUES["app/a"]]);
  });

  it("fails with CORRUPT when one record was altered, moved or is not a value record", async () => {
    const { raw, b } = await openStack();
    await writeValues(b);
    const record = (await raw.get("app/a")) as Buffer;
    const flipped = Buffer.from(record);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
    await raw.put("app/flipped", flipped);
    // A valid record of another key, copied here: its associated data names app/a.
    await raw.put("app/moved", record);
    await raw.put("app/garbage", Buffer.from("not a record"));
    for (const bad of ["app/flipped", "app/moved", "app/garbage"]) {
      await expectRejectedStorageError(() => b.get(bad), StorageErrorCode.CORRUPT, `get ${bad}`);
      await expectRejectedStorageError(() => b.getMany?.(["app/b", bad, "app/nested/c"]), StorageErrorCode.CORRUPT, `getMany ${bad}`);
    }
  });

  it("sees the transaction's own writes, decrypted, through the transaction's getMany", async () => {
    const { raw, b, calls, txCalls } = await openStack();
    await writeValues(b);
    const keys = ["app/a", "app/b", "app/new", "app/nested/c", "app/missing"];
    const inside = await b.transaction(async (tx) => {
      expect(typeof tx.getMany).toBe("function");
      await tx.put("app/a", Buffer.from("PLAINTEXT-GET-MANY-alpha-rewritten"));
      await tx.put("app/new", Buffer.from("PLAINTEXT-GET-MANY-new"));
      await tx.delete("app/b");
      const viaGetMany = await tx.getMany?.(keys);
      const viaGet = await Promise.all(keys.map((key) => tx.get(key)));
      expect(viaGetMany).toEqual(viaGet);
      // getValues in a transaction takes its getMany too.
      expect(await getValues(tx, ["app/new"])).toEqual([Buffer.from("PLAINTEXT-GET-MANY-new")]);
      return viaGetMany;
    });
    expect(inside).toEqual([
      Buffer.from("PLAINTEXT-GET-MANY-alpha-rewritten"),
      null,
      Buffer.from("PLAINTEXT-GET-MANY-new"),
      VALUES["app/nested/c"],
      null,
    ]);
    expect(txCalls).toEqual([keys, ["app/new"]]);
    expect(calls).toEqual([]);
    expect((await raw.get("app/new"))?.includes("PLAINTEXT-GET-MANY")).toBe(false);

    // Rolled back with its transaction: the outside getMany sees the values as they were.
    await expect(
      b.transaction(async (tx) => {
        await tx.put("app/a", Buffer.from("rolled back"));
        expect(await tx.getMany?.(["app/a"])).toEqual([Buffer.from("rolled back")]);
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(await b.getMany?.(["app/a", "app/b"])).toEqual([Buffer.from("PLAINTEXT-GET-MANY-alpha-rewritten"), null]);
  });

  it("checks keys, seal and transaction state in a transaction, before reading", async () => {
    const { seal, b, txCalls } = await openStack();
    await writeValues(b);
    const readOnly = await b.transaction((tx) => tx.getMany?.(["app/a", "app/missing"]) ?? Promise.resolve([]), { readOnly: true });
    expect(readOnly).toEqual([VALUES["app/a"], null]);
    expect(txCalls).toHaveLength(1);

    let leaked: Transaction | undefined;
    await b.transaction(async (tx) => {
      leaked = tx;
      await expectRejectedStorageError(() => tx.getMany?.(["app/a", KEYRING_KEY]), StorageErrorCode.INVALID_KEY, "reserved");
      await expectRejectedStorageError(() => tx.getMany?.(["app/a", "/bad"]), StorageErrorCode.INVALID_KEY, "invalid");
    });
    await expectRejectedStorageError(() => leaked?.getMany?.(["app/a"]), StorageErrorCode.CLOSED, "closed");
    expect(txCalls).toHaveLength(1);

    // Sealed while a transaction is open: its next getMany is refused.
    await expect(
      b.transaction(async (tx) => {
        seal.seal();
        await expectRejectedStorageError(() => tx.getMany?.(["app/a"]), StorageErrorCode.SEALED, "sealed in a transaction");
        throw new Error("done");
      }),
    ).rejects.toThrow("done");
    expect(txCalls).toHaveLength(1);
  });

  it("reloads the keyring for records under a version another process added, outside and inside transactions", async () => {
    const first = await openStack();
    // A second process on the same file, with its own manager and barrier.
    const rawB = SqliteBackend.open({ path: first.path });
    opened.push(rawB);
    const sealB = await SealManager.open(rawB);
    await sealB.unseal(first.share);
    const b2 = barrier(withGetMany(rawB).backend, sealB);

    await first.b.put("old", Buffer.from("under version 1"));
    expect((await first.seal.rotate()).term).toBe(2);
    await first.b.put("new/1", Buffer.from("under version 2"));
    await first.b.put("new/2", Buffer.from("also under version 2"));
    expect(sealB.keyStatus().term).toBe(1);
    expect(await b2.getMany?.(["old", "new/1", "missing", "new/2"])).toEqual([
      Buffer.from("under version 1"),
      Buffer.from("under version 2"),
      null,
      Buffer.from("also under version 2"),
    ]);
    expect(sealB.keyStatus().term).toBe(2);

    expect((await first.seal.rotate()).term).toBe(3);
    await first.b.put("new/3", Buffer.from("under version 3"));
    const inTx = await b2.transaction((tx) => tx.getMany?.(["new/3", "old"]) ?? Promise.resolve([]), { readOnly: true });
    expect(inTx).toEqual([Buffer.from("under version 3"), Buffer.from("under version 1")]);
    expect(sealB.keyStatus().term).toBe(3);
  });

  it("is offered exactly when the backend beneath offers it, on the backend and on its transactions", async () => {
    const { raw, seal, backend } = await openStack();
    const withMany = barrier(backend, seal);
    expect(await capabilityDifferences(backend, withMany)).toEqual([]);
    await withMany.transaction(async (tx) => {
      expect(typeof tx.getMany).toBe("function");
    });

    const bare = requiredBackend(raw);
    const without = barrier(bare, seal) as StorageBackend & Record<string, unknown>;
    expect(await capabilityDifferences(bare, without)).toEqual([]);
    expect("getMany" in without).toBe(false);
    await without.transaction(async (tx) => {
      expect("getMany" in tx).toBe(false);
      // getValues falls back to get, decrypting all the same.
      await tx.put("fallback/a", Buffer.from("PLAINTEXT-FALLBACK"));
      expect(await getValues(tx, ["fallback/a", "fallback/none"])).toEqual([Buffer.from("PLAINTEXT-FALLBACK"), null]);
    });
    expect(await getValues(without, ["fallback/a"])).toEqual([Buffer.from("PLAINTEXT-FALLBACK")]);
  });
});
