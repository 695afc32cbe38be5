import { type StorageChange, type Transaction, wrapStorage } from "@egide/storage-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHANGE_FEED_APPLICATION_NAME, PostgresBackend, type PostgresOptions } from "../src/index.js";
import { feedRecorder, sleep, waitFor, waitForAsync, waitLive } from "./support/feed-recorder.js";
import { RoundTripCounter } from "./support/round-trip-counter.js";
import { createTestDatabase, withAdminClient, type TestDatabase } from "./support/postgres-server.js";

const value = (text: string) => Buffer.from(text, "utf8");

// Two backend objects on one schema stand for two server instances sharing a database.
describe("the change feed between two backend objects", () => {
  let database: TestDatabase;
  const opened: PostgresBackend[] = [];
  let a: PostgresBackend;
  let b: PostgresBackend;

  const open = async (options: Partial<PostgresOptions> = {}) => {
    const backend = await PostgresBackend.open({ ...database.connection, schema: "feed", poolMin: 0, poolMax: 4, ...options });
    opened.push(backend);
    return backend;
  };

  /** Puts a marker through `writer` and waits until `recorder` has it: everything `writer` committed before has arrived. */
  const settle = async (writer: PostgresBackend, recorder: ReturnType<typeof feedRecorder>, marker: string) => {
    await writer.put(marker, value("marker"));
    await waitFor(`the marker ${marker}`, () => recorder.changes.some((change) => change.keys?.includes(marker)));
  };

  beforeAll(async () => {
    database = await createTestDatabase("change_feed");
    a = await open();
    b = await open();
  }, 30_000);

  afterAll(async () => {
    for (const backend of opened) await backend.close();
    await database?.drop();
  });

  it("delivers the other object's commits: exact keys, in commit order, rising positions", async () => {
    const seen = feedRecorder();
    const subscription = b.subscribeChanges!(seen.listener);
    try {
      expect(subscription.live).toBe(false);
      await waitLive(subscription);
      expect(seen.lives.map((entry) => entry.live)).toEqual([true]);
      const before = Date.now();
      await a.put("one/k1", value("1"));
      await a.delete("one/k2");
      await a.transaction(async (tx) => {
        await tx.put("one/t1", value("t1"));
        await tx.putMany?.([
          { key: "one/t2", value: value("a") },
          { key: "one/t3", value: value("b") },
          { key: "one/t2", value: value("c") },
        ]);
        await tx.delete("one/t4");
        await tx.put("one/t1", value("again"));
      });
      await a.put("one/k3", value("3"));
      const after = Date.now();
      await waitFor("four changes", () => seen.changes.length >= 4);
      await sleep(100);
      const keys = seen.keys();
      expect(keys).toHaveLength(4);
      expect(keys[0]).toEqual(["one/k1"]);
      expect(keys[1]).toEqual(["one/k2"]);
      // Each key once; a key written twice in the transaction is not listed twice.
      expect([...(keys[2] ?? [])].sort()).toEqual(["one/t1", "one/t2", "one/t3", "one/t4"]);
      expect(keys[3]).toEqual(["one/k3"]);
      const positions = seen.changes.map((change) => change.position);
      for (let i = 1; i < positions.length; i++) expect(positions[i]).toBeGreaterThan(positions[i - 1]!);
      for (const change of seen.changes) {
        expect(change.committedAt).toBeGreaterThanOrEqual(before);
        expect(change.committedAt).toBeLessThanOrEqual(after);
      }
    } finally {
      subscription.close();
    }
  });

  it("delivers commits from many concurrent writers in the order they committed", async () => {
    const seen = feedRecorder();
    const subscription = b.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      // Every write bumps one counter row too, in the same transaction: the counter's value at
      // commit is the commit order, which the feed must follow.
      await a.put("order/counter", value("0"));
      await settle(a, seen, "order/start");
      seen.changes.length = 0;
      const committed: string[] = [];
      await Promise.all(
        Array.from({ length: 4 }, async (_, worker) => {
          for (let n = 0; n < 10; n++) {
            const key = `order/w${worker}/${n}`;
            const position = await a.transaction(async (tx) => {
              const count = Number((await tx.get("order/counter"))?.toString() ?? "0") + 1;
              await tx.put("order/counter", value(String(count)));
              await tx.put(key, value("x"));
              return count;
            });
            committed[position - 1] = key;
          }
        }),
      );
      await waitFor("40 changes", () => seen.changes.length >= 40);
      const order = seen.keys().map((keys) => keys?.find((key) => key !== "order/counter"));
      expect(order).toEqual(committed);
    } finally {
      subscription.close();
    }
  });

  it("a serialization failure at the notifying COMMIT is retried as before, and only the commit that happened is delivered", async () => {
    await a.put("skew/x", value("0"));
    await a.put("skew/y", value("0"));
    const seen = feedRecorder();
    const own = feedRecorder();
    const subscription = b.subscribeChanges!(seen.listener);
    const ownSubscription = a.subscribeChanges!(own.listener);
    try {
      await waitLive(subscription);
      await waitLive(ownSubscription);
      // Write skew: both read x and y, the first writes x, the second y; the first commits, so
      // the second fails at its COMMIT (SQLSTATE 40001), after its callback finished.
      let releaseFirst!: () => void;
      const firstWrote = new Promise<void>((resolve) => {
        releaseFirst = resolve;
      });
      let secondWrote!: () => void;
      const secondDone = new Promise<void>((resolve) => {
        secondWrote = resolve;
      });
      let secondAttempts = 0;
      let secondFinishedCallback = 0;
      const first = a.transaction(async (tx) => {
        await tx.getMany?.(["skew/x", "skew/y"]);
        await tx.put("skew/x", value("1"));
        releaseFirst();
        await secondDone;
      });
      const second = a.transaction(async (tx) => {
        secondAttempts += 1;
        if (secondAttempts === 1) await firstWrote;
        await tx.getMany?.(["skew/x", "skew/y"]);
        await tx.put("skew/y", value("1"));
        secondFinishedCallback += 1;
        if (secondAttempts === 1) {
          secondWrote();
          // Let the first commit before this one does.
          await first;
        }
      });
      await Promise.all([first, second]);
      expect(secondAttempts, "the second transaction was retried").toBe(2);
      expect(secondFinishedCallback, "its first attempt failed at COMMIT, after its callback").toBe(2);
      await settle(a, seen, "skew/marker");
      expect(seen.keys()).toEqual([["skew/x"], ["skew/y"], ["skew/marker"]]);
      expect(own.keys()).toEqual([["skew/x"], ["skew/y"], ["skew/marker"]]);
    } finally {
      subscription.close();
      ownSubscription.close();
    }
  });

  it("delivers nothing for a rolled-back, a read-only or a write-free transaction", async () => {
    const seen = feedRecorder();
    const subscription = b.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      await expect(
        a.transaction(async (tx) => {
          await tx.put("rollback/k", value("never"));
          throw new Error("abandon");
        }),
      ).rejects.toThrow("abandon");
      await a.transaction(async (tx) => tx.get("rollback/k"), { readOnly: true });
      await a.transaction(async (tx) => {
        await tx.get("rollback/k");
        await tx.list("rollback/");
      });
      await settle(a, seen, "rollback/marker");
      expect(seen.keys()).toEqual([["rollback/marker"]]);
    } finally {
      subscription.close();
    }
  });

  it("delivers the writer's own commits locally, once, before the write resolves", async () => {
    const own = feedRecorder();
    const other = feedRecorder();
    const subscription = a.subscribeChanges!(own.listener);
    const otherSubscription = b.subscribeChanges!(other.listener);
    try {
      await waitLive(subscription);
      await waitLive(otherSubscription);
      const seenAtResolve: number[] = [];
      await a.put("own/1", value("1")).then(() => seenAtResolve.push(own.changes.length));
      await a.delete("own/2").then(() => seenAtResolve.push(own.changes.length));
      await a
        .transaction(async (tx) => {
          await tx.put("own/3", value("3"));
          // Not before the commit.
          expect(own.changes).toHaveLength(2);
        })
        .then(() => seenAtResolve.push(own.changes.length));
      expect(seenAtResolve).toEqual([1, 2, 3]);
      // A change of b's, committed after a's: once a has it, a's own notifications came back on
      // its LISTEN connection too, and must have been dropped there.
      await settle(b, own, "own/from-b");
      await settle(a, other, "own/marker");
      await waitFor("a's own marker", () => own.changes.some((change) => change.keys?.includes("own/marker")));
      await sleep(100);
      expect(own.keys()).toEqual([["own/1"], ["own/2"], ["own/3"], ["own/from-b"], ["own/marker"]]);
      expect(other.keys()).toEqual([["own/1"], ["own/2"], ["own/3"], ["own/from-b"], ["own/marker"]]);
    } finally {
      subscription.close();
      otherSubscription.close();
    }
  });

  it("sends keys null when they do not fit in a notification, and the exact keys locally", async () => {
    const own = feedRecorder();
    const other = feedRecorder();
    const subscription = a.subscribeChanges!(own.listener);
    const otherSubscription = b.subscribeChanges!(other.listener);
    try {
      await waitLive(subscription);
      await waitLive(otherSubscription);
      const many = Array.from({ length: 200 }, (_, n) => `overflow/${"k".repeat(40)}/${n}`);
      await a.transaction(async (tx) => {
        await tx.putMany?.(many.map((key) => ({ key, value: value("v") })));
      });
      // A single key always fits, however long (keys are at most 1024 bytes).
      const longKey = `overflow/${"é".repeat(500)}`;
      await a.put(longKey, value("long"));
      await settle(a, other, "overflow/marker");
      expect(other.keys()).toEqual([null, [longKey], ["overflow/marker"]]);
      expect(own.keys()).toEqual([many, [longKey], ["overflow/marker"]]);
    } finally {
      subscription.close();
      otherSubscription.close();
    }
  });

  it("reads a malformed or foreign notification on its channel as a change of unknown keys", async () => {
    const seen = feedRecorder();
    const subscription = b.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      const channel = b.changeFeedStatus!().channel;
      expect(channel).toBe("egide_changes_feed");
      await withAdminClient(database.name, async (client) => {
        for (const payload of ["", "not json", "[1,2]", '{"o":1,"k":["x"]}', '{"o":"someone","t":"soon","k":["x",2]}']) {
          await client.query("SELECT pg_notify($1, $2)", [channel, payload]);
        }
        // A well-formed one from another program is taken at its word.
        await client.query("SELECT pg_notify($1, $2)", [channel, JSON.stringify({ o: "tool", t: 1234, k: ["tool/key"] })]);
      });
      await settle(a, seen, "foreign/marker");
      expect(seen.keys()).toEqual([null, null, null, null, null, ["tool/key"], ["foreign/marker"]]);
      expect(seen.changes[5]?.committedAt).toBe(1234);
    } finally {
      subscription.close();
    }
  });

  it("does not deliver the changes of another schema", async () => {
    const elsewhere = await open({ schema: "feed_other" });
    const seen = feedRecorder();
    const subscription = b.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      expect(elsewhere.changeFeedStatus!().channel).toBe("egide_changes_feed_other");
      await elsewhere.put("schema/other", value("x"));
      await settle(a, seen, "schema/marker");
      expect(seen.keys()).toEqual([["schema/marker"]]);
    } finally {
      subscription.close();
    }
  });

  it("keeps a single put or delete to one round trip and a transaction's NOTIFY in its COMMIT's", async () => {
    const counter = new RoundTripCounter();
    const { host, port } = await counter.start();
    const seen = feedRecorder();
    const subscription = b.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      for (const prepareThreshold of [0, 1]) {
        // Through the counting proxy; one connection, warmed first. The LISTEN connection of
        // this object is not opened (nobody subscribes to it), so every round trip counted is a write's.
        const writer = await open({ host, port, sslMode: "disable", poolMax: 1, prepareThreshold });
        await writer.get("rt/warm");
        for (let n = 0; n < 3; n++) {
          counter.reset();
          await writer.put(`rt/${prepareThreshold}/put${n}`, value("x"));
          expect(counter.roundTrips, "round trips of one put").toBe(1);
          counter.reset();
          await writer.delete(`rt/${prepareThreshold}/del${n}`);
          expect(counter.roundTrips, "round trips of one delete").toBe(1);
        }
        counter.reset();
        await writer.transaction(async (tx) => {
          await tx.put(`rt/${prepareThreshold}/tx`, value("x"));
        });
        // BEGIN, the put, then the NOTIFY with the COMMIT.
        expect(counter.roundTrips, "round trips of a one-put transaction").toBe(3);
        expect(counter.simpleQueries.at(-1)).toMatch(/^SELECT pg_notify\('egide_changes_feed', .*\); COMMIT$/);
        counter.reset();
        await writer.transaction(async (tx) => tx.get("rt/x"));
        expect(counter.simpleQueries.at(-1)).toBe("COMMIT");
        await writer.close();
      }
      await settle(a, seen, "rt/marker");
      const expected = [0, 1].flatMap((t) => [...[0, 1, 2].flatMap((n) => [[`rt/${t}/put${n}`], [`rt/${t}/del${n}`]]), [`rt/${t}/tx`]]);
      expect(seen.keys()).toEqual([...expected, ["rt/marker"]]);
    } finally {
      subscription.close();
      await counter.close();
    }
  });

  it("escapes the payload literal of a transaction's NOTIFY", async () => {
    const seen = feedRecorder();
    const subscription = b.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      const keys = ["quote/it's", 'quote/"double"', "quote/back\\slash", "quote/ünï", "quote/$$dollar$$", "quote/x'); DROP TABLE t; --"];
      await a.transaction(async (tx) => {
        for (const key of keys) await tx.put(key, value("x"));
      });
      await settle(a, seen, "quote/marker");
      expect(seen.keys()).toEqual([keys, ["quote/marker"]]);
    } finally {
      subscription.close();
    }
  });

  it("opens its LISTEN connection only while someone subscribes, and reports its state", async () => {
    const listeners = () =>
      withAdminClient(database.name, async (client) => {
        const result = await client.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
          [database.name, CHANGE_FEED_APPLICATION_NAME],
        );
        return result.rows[0]?.n ?? -1;
      });
    const backend = await open({ password: "never-shown-secret" });
    expect(await listeners()).toBe(0);
    expect(backend.changeFeedStatus!()).toMatchObject({ live: false, subscribers: 0, reconnects: 0, host: database.connection.host });
    const first = backend.subscribeChanges!(feedRecorder().listener);
    const second = backend.subscribeChanges!(feedRecorder().listener);
    await waitLive(first);
    expect(second.live).toBe(true);
    expect(await listeners()).toBe(1);
    const status = backend.changeFeedStatus!();
    expect(status).toEqual({
      live: true,
      host: database.connection.host,
      port: database.connection.port,
      channel: "egide_changes_feed",
      subscribers: 2,
      reconnects: 0,
    });
    expect(JSON.stringify(status)).not.toContain("never-shown-secret");
    first.close();
    expect(await listeners()).toBe(1);
    second.close();
    second.close();
    expect(backend.changeFeedStatus!()).toMatchObject({ live: false, subscribers: 0 });
    await waitForAsync("the LISTEN connection to close", async () => (await listeners()) === 0, 3000);
    // A new subscriber opens it again.
    const third = backend.subscribeChanges!(feedRecorder().listener);
    await waitLive(third);
    expect(await listeners()).toBe(1);
    third.close();
  });

  it("never goes live on a LISTEN connection to another database (a wrong listen_url)", async () => {
    const elsewhere = await createTestDatabase("change_feed_wrong");
    try {
      const { host, port, username } = database.connection;
      const backend = await open({ listenUrl: `postgres://${username}@${host}:${port}/${elsewhere.name}` });
      expect(backend.options.listen.database).toBe(elsewhere.name);
      const seen = feedRecorder();
      const subscription = backend.subscribeChanges!(seen.listener);
      await waitFor("a failed attempt", () => backend.changeFeedStatus!().lastError !== undefined);
      await sleep(300);
      expect(subscription.live).toBe(false);
      expect(seen.lives).toEqual([]);
      expect(backend.changeFeedStatus!().lastError).toContain(`reaches database "${elsewhere.name}", not "${database.name}"`);
      await backend.close();
    } finally {
      await elsewhere.drop();
    }
  });

  it("ends every subscription on close: told live(false), no LISTEN connection left", async () => {
    const backend = await open();
    const seen = feedRecorder();
    const subscription = backend.subscribeChanges!(seen.listener);
    await waitLive(subscription);
    await backend.close();
    expect(subscription.live).toBe(false);
    expect(seen.lives.map((entry) => entry.live)).toEqual([true, false]);
    // A subscription after close is never live.
    const late = backend.subscribeChanges!(feedRecorder().listener);
    await sleep(100);
    expect(late.live).toBe(false);
    expect(backend.changeFeedStatus!().live).toBe(false);
  });

  it("is forwarded by wrapStorage, and reaches transactions made through a decorator", async () => {
    const wrapped = wrapStorage(b);
    expect(typeof wrapped.subscribeChanges).toBe("function");
    const seen = feedRecorder();
    const subscription = wrapped.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      await wrapStorage(a).transaction(async (tx: Transaction) => {
        await tx.put("wrapped/k", value("x"));
      });
      await waitFor("the decorated write", () => seen.changes.length > 0);
      expect(seen.changes.map((change: StorageChange) => change.keys)).toEqual([["wrapped/k"]]);
    } finally {
      subscription.close();
    }
  });
});
