import { expect, it } from "vitest";
import { putEntries } from "@egide/storage-core";
import type { ChangeFeedSubscription, StorageBackend, StorageChange } from "@egide/storage-core";
import { collectScan } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { FEED_LIVE_TIMEOUT_MS, FEED_QUIET_MS, FeedRecorder, subscribeLive } from "./feed-recorder.js";
import { sleep } from "./sleep.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { utf8 } from "./utf8.js";

/**
 * How far `committedAt` may stray from the caller's own clock read around the write: the
 * writer is this process, so only rounding (or a database clock on this same machine) remains.
 */
const COMMITTED_AT_SLACK_MS = 1_000;

/** A listener that breaks the rule that listeners never throw, after recording what it was told. */
class ThrowingRecorder extends FeedRecorder {
  override change(change: StorageChange): void {
    super.change(change);
    throw new Error("a listener that throws from change()");
  }

  override live(live: boolean): void {
    super.live(live);
    throw new Error("a listener that throws from live()");
  }
}

/** Positions increase strictly in delivery order. */
function expectIncreasingPositions(changes: readonly StorageChange[]): void {
  for (const [at, change] of changes.entries()) {
    expect(Number.isFinite(change.position), `position of change ${at}`).toBe(true);
    if (at > 0) expect(change.position, `position of change ${at}`).toBeGreaterThan(changes[at - 1]!.position);
  }
}

/** `committedAt` is a time in milliseconds between `before` and `after` (with slack). */
function expectCommittedBetween(change: StorageChange | undefined, before: number, after: number): void {
  expect(change, "a change was delivered").toBeDefined();
  const committedAt = change?.committedAt ?? Number.NaN;
  expect(Number.isFinite(committedAt), `committedAt ${committedAt}`).toBe(true);
  expect(committedAt).toBeGreaterThanOrEqual(before - COMMITTED_AT_SLACK_MS);
  expect(committedAt).toBeLessThanOrEqual(after + COMMITTED_AT_SLACK_MS);
}

/** Whether some delivered change names `key`. */
function delivered(recorder: FeedRecorder, key: string): boolean {
  return recorder.changes.some((change) => change.keys?.includes(key) === true);
}

/**
 * The change feed (`subscribeChanges`), when the backend declares it: a subscription becomes
 * live within {@link FEED_LIVE_TIMEOUT_MS}; a put, a delete and a transaction each deliver one
 * change naming exactly their keys, once each (never `keys: null`, since the write went through
 * this very object), before the write resolves, with strictly increasing positions and a
 * `committedAt` of now; rolled-back transactions, read-only transactions, reads and rejected
 * writes deliver nothing; `close()` stops delivery; every subscriber gets every change; a
 * throwing listener breaks neither writes nor other subscribers; closing the backend ends the
 * feed. Each test listens a little longer ({@link FEED_QUIET_MS}) to catch late duplicates.
 */
export function exerciseChangeFeed(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), TEST_TIMEOUT_MS + FEED_LIVE_TIMEOUT_MS);
  };
  /** Runs `body` with live subscriptions of `recorders`, closing them afterwards whatever happens. */
  const listening = async (
    b: StorageBackend,
    recorders: FeedRecorder[],
    body: (subscriptions: ChangeFeedSubscription[]) => Promise<void>,
  ) => {
    const subscriptions: ChangeFeedSubscription[] = [];
    try {
      for (const recorder of recorders) subscriptions.push(await subscribeLive(b, recorder));
      await body(subscriptions);
    } finally {
      for (const subscription of subscriptions) subscription.close();
    }
  };

  test(`a subscription becomes live within ${FEED_LIVE_TIMEOUT_MS / 1000} s, told live(true) once, and hears nothing without writes`, async (b) => {
    const recorder = new FeedRecorder();
    await listening(b, [recorder], async ([subscription]) => {
      expect(recorder.liveCalls).toEqual([true]);
      await sleep(FEED_QUIET_MS);
      expect(subscription?.live).toBe(true);
      expect(recorder.liveCalls).toEqual([true]);
      expect(recorder.changes).toEqual([]);
    });
  });

  test("a put delivers one change with exactly its key, before the put resolves, and only once", async (b) => {
    const recorder = new FeedRecorder();
    await listening(b, [recorder], async () => {
      const before = Date.now();
      await b.put("feed/put", utf8("v"));
      const after = Date.now();
      expect(recorder.keysPerChange(), "delivered when put resolved").toEqual([["feed/put"]]);
      expectCommittedBetween(recorder.changes[0], before, after);
      await sleep(FEED_QUIET_MS);
      expect(recorder.keysPerChange(), "delivered once").toEqual([["feed/put"]]);
    });
  });

  test("a delete delivers one change with exactly its key, before the delete resolves, and only once", async (b) => {
    const recorder = new FeedRecorder();
    await listening(b, [recorder], async () => {
      await b.put("feed/del", utf8("v"));
      await b.delete("feed/del");
      expect(recorder.keysPerChange(), "delivered when delete resolved").toEqual([["feed/del"], ["feed/del"]]);
      await sleep(FEED_QUIET_MS);
      expect(recorder.keysPerChange(), "delivered once").toEqual([["feed/del"], ["feed/del"]]);
      expectIncreasingPositions(recorder.changes);
    });
  });

  test("a multi-key transaction delivers one change with each key it wrote once, at commit, before it resolves", async (b) => {
    await b.put("tx/c", utf8("c"));
    const recorder = new FeedRecorder();
    await listening(b, [recorder], async () => {
      const before = Date.now();
      await b.transaction(async (tx) => {
        await tx.put("tx/a", utf8("1"));
        await tx.put("tx/b", utf8("1"));
        await tx.put("tx/a", utf8("2"));
        await tx.delete("tx/c");
        await putEntries(tx, [
          { key: "tx/e", value: utf8("e") },
          { key: "tx/f", value: utf8("f") },
          { key: "tx/a", value: utf8("3") },
        ]);
        expect(recorder.changes, "nothing is delivered before the commit").toEqual([]);
      });
      const after = Date.now();
      const expected = [["tx/a", "tx/b", "tx/c", "tx/e", "tx/f"]];
      expect(recorder.keysPerChange(), "delivered when the transaction resolved").toEqual(expected);
      expectCommittedBetween(recorder.changes[0], before, after);
      await sleep(FEED_QUIET_MS);
      expect(recorder.keysPerChange(), "delivered once").toEqual(expected);
    });
  });

  test("rolled-back transactions, read-only transactions, reads and rejected writes deliver nothing", async (b) => {
    await b.put("quiet/k", utf8("v"));
    const recorder = new FeedRecorder();
    await listening(b, [recorder], async () => {
      const failure = new Error("roll back");
      await expect(
        b.transaction(async (tx) => {
          await tx.put("quiet/k", utf8("changed"));
          await tx.put("quiet/new", utf8("n"));
          await tx.delete("quiet/k");
          throw failure;
        }),
      ).rejects.toBe(failure);
      await b.transaction(
        async (tx) => {
          await tx.get("quiet/k");
          await tx.list("quiet/");
          await tx.put("quiet/ro", utf8("x")).catch(() => undefined);
        },
        { readOnly: true },
      );
      await b.get("quiet/k");
      await b.exists("quiet/k");
      await b.list("");
      await b.listPage("", "", 1);
      await collectScan(b, "");
      if (typeof b.getMany === "function") await b.getMany(["quiet/k", "quiet/none"]);
      await expect(b.put("/invalid", utf8("v"))).rejects.toBeDefined();
      await expect(b.delete("a//b")).rejects.toBeDefined();
      await expect(b.put("quiet/big", new Uint8Array(context.options.maxValueBytes + 1))).rejects.toBeDefined();
      await sleep(FEED_QUIET_MS);
      expect(recorder.changes).toEqual([]);
      // And the feed still works.
      await b.put("quiet/after", utf8("v"));
      expect(recorder.keysPerChange()).toEqual([["quiet/after"]]);
      expect(await b.get("quiet/new")).toBeNull();
    });
  });

  test("concurrent writes are each delivered once, before each resolves, in strictly increasing positions", async (b) => {
    const recorder = new FeedRecorder();
    await listening(b, [recorder], async () => {
      const expected: string[] = [];
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 8; i++) {
        const key = `conc/p${i}`;
        expected.push(key);
        writes.push(b.put(key, utf8(String(i))).then(() => expect(delivered(recorder, key), key).toBe(true)));
      }
      for (let i = 0; i < 4; i++) {
        const keys = [`conc/t${i}/a`, `conc/t${i}/b`];
        expected.push(...keys);
        writes.push(
          b
            .transaction(async (tx) => {
              for (const key of keys) await tx.put(key, utf8(String(i)));
            })
            .then(() => {
              for (const key of keys) expect(delivered(recorder, key), key).toBe(true);
            }),
        );
      }
      await Promise.all(writes);
      await sleep(FEED_QUIET_MS);
      const keys = recorder.changes.flatMap((change) => change.keys ?? ["(null)"]);
      expect(keys.sort()).toEqual(expected.sort());
      expect(recorder.changes).toHaveLength(12);
      expectIncreasingPositions(recorder.changes);
    });
  });

  test("close() of a subscription stops its deliveries, leaves the others, and is idempotent", async (b) => {
    const closing = new FeedRecorder();
    const staying = new FeedRecorder();
    await listening(b, [closing, staying], async ([subscription]) => {
      await b.put("close/1", utf8("1"));
      subscription?.close();
      subscription?.close();
      await b.put("close/2", utf8("2"));
      await sleep(FEED_QUIET_MS);
      expect(closing.keysPerChange()).toEqual([["close/1"]]);
      expect(staying.keysPerChange()).toEqual([["close/1"], ["close/2"]]);
    });
  });

  test("two subscribers both receive every change, with the same positions", async (b) => {
    const first = new FeedRecorder();
    const second = new FeedRecorder();
    await listening(b, [first, second], async () => {
      await b.put("two/a", utf8("a"));
      await b.transaction(async (tx) => {
        await tx.put("two/b", utf8("b"));
        await tx.delete("two/a");
      });
      const expected = [["two/a"], ["two/a", "two/b"]];
      expect(first.keysPerChange()).toEqual(expected);
      expect(second.keysPerChange()).toEqual(expected);
      expect(second.changes.map((change) => change.position)).toEqual(first.changes.map((change) => change.position));
      expectIncreasingPositions(first.changes);
    });
  });

  test("a listener that throws breaks neither the writes nor the other subscribers", async (b) => {
    const throwing = new ThrowingRecorder();
    const other = new FeedRecorder();
    // The throwing one subscribes first, so it is told before the other.
    await listening(b, [throwing, other], async () => {
      await b.put("throw/1", utf8("1"));
      await b.transaction(async (tx) => {
        await tx.put("throw/2", utf8("2"));
        await tx.put("throw/3", utf8("3"));
      });
      await b.delete("throw/1");
      expect(other.keysPerChange()).toEqual([["throw/1"], ["throw/2", "throw/3"], ["throw/1"]]);
      expect(throwing.changes.length, "the throwing listener was told too").toBeGreaterThan(0);
      expect((await b.get("throw/3"))?.toString()).toBe("3");
      expect(await b.get("throw/1")).toBeNull();
    });
  });

  test("committedAt is the commit time, on this process's clock, for puts, deletes and transactions", async (b) => {
    const recorder = new FeedRecorder();
    await listening(b, [recorder], async () => {
      const writes: [string, () => Promise<void>][] = [
        ["put", () => b.put("at/k", utf8("v"))],
        ["delete", () => b.delete("at/k")],
        ["transaction", () => b.transaction((tx) => tx.put("at/t", utf8("t")))],
      ];
      for (const [at, [label, write]] of writes.entries()) {
        const before = Date.now();
        await write();
        const after = Date.now();
        expect(recorder.changes, label).toHaveLength(at + 1);
        expectCommittedBetween(recorder.changes[at], before, after);
      }
    });
  });

  test("closing the backend ends the feed: its subscribers are told it is no longer live", async (b) => {
    const recorder = new FeedRecorder();
    await listening(b, [recorder], async ([subscription]) => {
      await b.close();
      expect(recorder.liveCalls).toEqual([true, false]);
      expect(subscription?.live).toBe(false);
    });
  });
}
