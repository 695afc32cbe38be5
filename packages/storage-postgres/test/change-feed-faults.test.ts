import { TcpProxy } from "@egide/test-postgres";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CHANGE_FEED_APPLICATION_NAME, PostgresBackend } from "../src/index.js";
import { feedRecorder, waitFor, waitLive } from "./support/feed-recorder.js";
import { guardProcess } from "./support/guard-process.js";
import { createTestDatabase, withAdminClient, type TestDatabase } from "./support/postgres-server.js";

const value = (text: string) => Buffer.from(text, "utf8");
/** The promise of the design: nobody believes the feed live for longer than this after it broke. */
const NOT_LIVE_WITHIN_MS = 1000;
/** How long the feed gets to come back once the database is reachable again. */
const RECOVERY_MS = 5000;

// The subscriber's LISTEN connection goes through a TCP proxy that the tests break; its writes
// and the other writer's go straight to PostgreSQL, so only the feed's own path fails.
describe("the change feed when its LISTEN connection fails", () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let writer: PostgresBackend;
  let subscriber: PostgresBackend;
  let guard: ReturnType<typeof guardProcess>;

  beforeAll(async () => {
    database = await createTestDatabase("change_feed_faults");
    proxy = new TcpProxy();
    const { port } = await proxy.start();
    writer = await PostgresBackend.open({ ...database.connection, poolMin: 0, poolMax: 2 });
    subscriber = await PostgresBackend.open({ ...database.connection, poolMin: 0, poolMax: 2, listenHost: "127.0.0.1", listenPort: port });
  }, 30_000);

  afterAll(async () => {
    await subscriber?.close();
    await writer?.close();
    await proxy?.close();
    await database?.drop();
  });

  beforeEach(() => {
    guard = guardProcess();
  });

  afterEach(() => {
    proxy.pass();
    guard.dispose();
    expect(guard.escaped.map(String), "errors escaped as uncaught exceptions or unhandled rejections").toEqual([]);
  });

  /** Writes `key` and waits until `recorder` has it. */
  const arrives = async (recorder: ReturnType<typeof feedRecorder>, key: string) => {
    await writer.put(key, value("x"));
    await waitFor(`${key} to arrive`, () => recorder.changes.some((change) => change.keys?.includes(key)), RECOVERY_MS);
  };

  it("goes through the proxy", async () => {
    const seen = feedRecorder();
    const subscription = subscriber.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      expect(proxy.openConnections).toBe(1);
      expect(subscriber.changeFeedStatus!()).toMatchObject({ live: true, host: "127.0.0.1", port: proxy.port });
      await arrives(seen, "proxy/ok");
    } finally {
      subscription.close();
    }
  });

  it("pg_terminate_backend: not live, then live again within seconds, and later changes arrive", async () => {
    const seen = feedRecorder();
    const subscription = subscriber.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      const reconnectsBefore = subscriber.changeFeedStatus!().reconnects;
      const terminated = await withAdminClient(database.name, async (client) => {
        const result = await client.query<{ terminated: boolean }>(
          "SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
          [database.name, CHANGE_FEED_APPLICATION_NAME],
        );
        return result.rows.filter((row) => row.terminated).length;
      });
      expect(terminated).toBe(1);
      await waitFor("live(false)", () => seen.lives.some((entry) => !entry.live), NOT_LIVE_WITHIN_MS);
      await waitFor("live(true) again", () => seen.lives.at(-1)?.live === true && seen.lives.length >= 3, RECOVERY_MS);
      expect(seen.lives.map((entry) => entry.live)).toEqual([true, false, true]);
      const status = subscriber.changeFeedStatus!();
      expect(status.live).toBe(true);
      expect(status.reconnects).toBeGreaterThan(reconnectsBefore);
      expect(status.lastError).toMatch(/terminat|ended|lost/i);
      await arrives(seen, "terminate/after");
    } finally {
      subscription.close();
    }
  }, 20_000);

  it("a silent cut (black hole): not live within a second, live again once traffic flows", async () => {
    const seen = feedRecorder();
    const subscription = subscriber.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      await arrives(seen, "blackhole/before");
      const cutAt = performance.now();
      proxy.blackhole();
      await waitFor("live(false)", () => !subscription.live, 3000);
      const notLiveAfter = (seen.lives.find((entry) => !entry.live)?.at ?? Number.POSITIVE_INFINITY) - cutAt;
      console.info(`change feed: live(false) ${Math.round(notLiveAfter)} ms after the black hole`);
      expect(notLiveAfter).toBeLessThan(NOT_LIVE_WITHIN_MS);
      expect(subscriber.changeFeedStatus!().lastError).toMatch(/heartbeat/);
      // A change committed meanwhile cannot arrive; that is what live(false) told the subscriber.
      await writer.put("blackhole/during", value("x"));
      proxy.pass();
      await waitLive(subscription, RECOVERY_MS);
      expect(seen.lives.map((entry) => entry.live)).toEqual([true, false, true]);
      await arrives(seen, "blackhole/after");
    } finally {
      subscription.close();
    }
  }, 20_000);

  it("a reset connection and a refused reconnect: not live at once, backing off, live again after", async () => {
    const seen = feedRecorder();
    const subscription = subscriber.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      const acceptedBefore = proxy.acceptedConnections;
      const cutAt = performance.now();
      proxy.cut();
      await waitFor("live(false)", () => !subscription.live, NOT_LIVE_WITHIN_MS);
      console.info(`change feed: live(false) ${Math.round(performance.now() - cutAt)} ms after the reset`);
      // 2.5 s of refused reconnects: the backoff (50 ms doubling to 1 s) keeps them few.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const attempts = proxy.acceptedConnections - acceptedBefore;
      expect(attempts).toBeGreaterThanOrEqual(3);
      expect(attempts).toBeLessThan(15);
      expect(subscription.live).toBe(false);
      proxy.pass();
      // The next attempt comes at most a second later.
      await waitLive(subscription, 2500);
      await arrives(seen, "cut/after");
      expect(seen.lives.map((entry) => entry.live)).toEqual([true, false, true]);
    } finally {
      subscription.close();
    }
  }, 20_000);

  it("nobody subscribed: no connection, no reconnect attempts", async () => {
    const acceptedBefore = proxy.acceptedConnections;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(proxy.openConnections).toBe(0);
    expect(proxy.acceptedConnections).toBe(acceptedBefore);
  });
});
