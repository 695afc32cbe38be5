import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capabilityDifferences } from "@egide/storage-conformance";
import { ChangeFeedHub, wrapStorage } from "@egide/storage-core";
import type { ChangeFeedListener, ScanEntry, StorageBackend, StorageChange, Transaction, TransactionOptions } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { KEYRING_KEY, SealManager, barrier, isReservedKey } from "../src/index.js";

// The change feed through the barrier: the backend's changes, with the barrier's reserved keys
// (the keyring, written at every encryption reservation and rotation) taken out, and a change
// that touched only reserved keys not delivered; positions and commit times are the backend's.
//
// The SQLite backend has no feed of its own, so a small decorator over a real SQLite file
// publishes the keys of every put, delete and committed transaction through a ChangeFeedHub.
// The seal manager is opened on that decorator too, so its keyring writes reach the feed as
// they would on a backend with a feed of its own.

const dir = mkdtempSync(join(tmpdir(), "egide-barrier-change-feed-"));
let files = 0;
const opened: StorageBackend[] = [];

afterEach(async () => {
  for (const backend of opened.splice(0)) await backend.close();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** `raw` with a change feed of the writes made through it (keys of each put, delete and committed transaction). */
function withChangeFeed(raw: StorageBackend): { backend: StorageBackend; hub: ChangeFeedHub } {
  const hub = new ChangeFeedHub();
  const written = new WeakMap<Transaction, Set<string>>();
  const backend = wrapStorage(raw, {
    async put(key: string, value: Uint8Array) {
      await raw.put(key, value);
      hub.publish([key]);
    },
    async delete(key: string) {
      await raw.delete(key);
      hub.publish([key]);
    },
    async transaction<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T> {
      let keys = new Set<string>();
      const result = await raw.transaction((tx) => {
        // A retried attempt starts over.
        keys = new Set();
        written.set(tx, keys);
        return fn(tx);
      }, options);
      if (keys.size > 0) hub.publish([...keys]);
      return result;
    },
    wrapTransaction: (tx: Transaction) => ({
      put(key: string, value: Uint8Array) {
        written.get(tx)?.add(key);
        return tx.put(key, value);
      },
      delete(key: string) {
        written.get(tx)?.add(key);
        return tx.delete(key);
      },
      putMany(entries: readonly ScanEntry[]) {
        for (const entry of entries) written.get(tx)?.add(entry.key);
        return (tx.putMany as (entries: readonly ScanEntry[]) => Promise<void>).call(tx, entries);
      },
    }),
  }) as StorageBackend;
  backend.subscribeChanges = (listener) => hub.subscribe(listener);
  return { backend, hub };
}

/** A listener that keeps what it is told. */
function recorder(): ChangeFeedListener & { changes: StorageChange[]; lives: boolean[] } {
  const changes: StorageChange[] = [];
  const lives: boolean[] = [];
  return { changes, lives, change: (change) => changes.push(change), live: (live) => lives.push(live) };
}

async function openStack() {
  const raw = SqliteBackend.open({ path: join(dir, `feed-${++files}.sqlite`) });
  opened.push(raw);
  const { backend, hub } = withChangeFeed(raw);
  // A reservation of 2 encryptions, so the keyring is written every other put.
  const seal = await SealManager.open(backend, { encryptionsPerReservation: 2 });
  const { shares } = await seal.initialize({ shares: 1, threshold: 1 });
  await seal.unseal(shares[0] as Buffer);
  return { backend, hub, seal, b: barrier(backend, seal) };
}

describe("the change feed through the barrier", () => {
  it("delivers the backend's changes without reserved keys, in order and at the backend's positions", async () => {
    const { backend, hub, seal, b } = await openStack();
    const beneath = recorder();
    const above = recorder();
    backend.subscribeChanges?.(beneath);
    const subscription = b.subscribeChanges?.(above);
    expect(subscription?.live).toBe(false);
    hub.setLive(true);
    expect(subscription?.live).toBe(true);

    for (let i = 0; i < 5; i++) await b.put(`app/k${i}`, Buffer.from(`value ${i}`));
    await b.transaction(async (tx) => {
      await tx.put("app/tx", Buffer.from("in a transaction"));
      await tx.delete("app/k0");
    });
    await b.delete("app/k1");
    await seal.rotate();
    // A change whose keys are unknown passes as it is.
    hub.publish(null);

    // The keyring was written, and the feed beneath said so.
    const reservedBeneath = beneath.changes.filter((change) => change.keys?.some(isReservedKey));
    expect(reservedBeneath.length).toBeGreaterThanOrEqual(3);
    expect(reservedBeneath.some((change) => change.keys?.includes(KEYRING_KEY))).toBe(true);

    // What the barrier's subscriber should hear: each change beneath without reserved keys,
    // at its position and commit time, and nothing for a change of reserved keys only.
    const expected = beneath.changes.flatMap((change) => {
      if (change.keys === null) return [change];
      const keys = change.keys.filter((key) => !isReservedKey(key));
      return keys.length === 0 ? [] : [{ position: change.position, keys, committedAt: change.committedAt }];
    });
    expect(above.changes).toEqual(expected);
    expect(above.changes.length).toBeLessThan(beneath.changes.length);
    for (const change of above.changes) expect(change.keys?.some(isReservedKey) ?? false).toBe(false);
    // One change per write through the barrier, as over any backend, with positions increasing.
    expect(above.changes.map((change) => change.keys)).toEqual([
      ["app/k0"],
      ["app/k1"],
      ["app/k2"],
      ["app/k3"],
      ["app/k4"],
      ["app/tx", "app/k0"],
      ["app/k1"],
      null,
    ]);
    for (const [at, change] of above.changes.entries())
      if (at > 0) expect(change.position).toBeGreaterThan(above.changes[at - 1]!.position);
    // A change without reserved keys is passed on as it is.
    const plain = beneath.changes.find((change) => change.keys?.includes("app/k3"));
    expect(above.changes).toContain(plain);

    // A change naming reserved and other keys (a rewrap moves values and records its progress in one transaction).
    hub.publish(["app/k2", KEYRING_KEY, "app/k3"]);
    expect(above.changes.at(-1)?.keys).toEqual(["app/k2", "app/k3"]);
    expect(above.changes.at(-1)?.position).toBe(beneath.changes.at(-1)?.position);

    // Liveness passes through, and a closed subscription hears nothing more.
    hub.setLive(false);
    expect(above.lives).toEqual([true, false]);
    subscription?.close();
    await b.put("app/after-close", Buffer.from("x"));
    expect(above.changes.at(-1)?.keys).toEqual(["app/k2", "app/k3"]);
    expect(beneath.changes.at(-1)?.keys).toEqual(["app/after-close"]);
  });

  it("keeps subscribers of the barrier apart from each other and from those beneath", async () => {
    const { backend, hub, b } = await openStack();
    hub.setLive(true);
    const first = recorder();
    const second = recorder();
    const sub1 = b.subscribeChanges?.(first);
    b.subscribeChanges?.(second);
    expect(first.lives).toEqual([true]);
    expect(hub.subscribers).toBe(2);
    await b.put("app/a", Buffer.from("a"));
    sub1?.close();
    await b.put("app/b", Buffer.from("b"));
    expect(first.changes.flatMap((change) => change.keys ?? [])).toEqual(["app/a"]);
    expect(second.changes.flatMap((change) => change.keys ?? [])).toEqual(["app/a", "app/b"]);
    expect(hub.subscribers).toBe(1);
    expect(await capabilityDifferences(backend, b)).toEqual([]);
  });

  it("is absent over a backend without a feed", async () => {
    const raw = SqliteBackend.open({ path: join(dir, `feed-${++files}.sqlite`) });
    opened.push(raw);
    const seal = await SealManager.open(raw);
    const { shares } = await seal.initialize({ shares: 1, threshold: 1 });
    await seal.unseal(shares[0] as Buffer);
    const b = barrier(raw, seal);
    expect(typeof (raw as StorageBackend).subscribeChanges === "function").toBe("subscribeChanges" in b);
  });
});
