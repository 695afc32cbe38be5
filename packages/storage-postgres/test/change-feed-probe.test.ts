import { TcpProxy } from "@egide/test-postgres";
import { describe, expect, it } from "vitest";
import { feedRecorder, sleep, waitFor, waitLive } from "./support/feed-recorder.js";
import { guardProcess } from "./support/guard-process.js";
import { postgresServer } from "./support/postgres-server.js";
import { usePgBouncer } from "./support/pgbouncer-fixture.js";

const value = (text: string) => Buffer.from(text, "utf8");
/** The promise of the design: nobody believes the feed live for longer than this after delivery stopped. */
const NOT_LIVE_WITHIN_MS = 1000;
/** How long a correctly configured feed may take to become live. */
const LIVE_WITHIN_MS = 1000;

/** The longest stretch `lives` says live, up to `until` (performance.now()). */
function longestLive(lives: readonly { live: boolean; at: number }[], until: number): number {
  let longest = 0;
  for (const [index, entry] of lives.entries()) {
    if (!entry.live) continue;
    longest = Math.max(longest, (lives[index + 1]?.at ?? until) - entry.at);
  }
  return longest;
}

// The feed proves delivery end to end: a pg_notify sent through the pool (the writes' path) must
// reach the LISTEN connection. Writes go through PgBouncer in transaction mode here.
describe("the change feed's delivery probe", () => {
  // One server connection: PgBouncer hands every query the same one, the one holding a
  // misplaced LISTEN, which is what made a pg_listening_channels() heartbeat pass.
  const { open, database, bouncer } = usePgBouncer("change_feed_probe", { defaultPoolSize: 1, poolMax: 2 });

  it("is never live for long with its LISTEN misconfigured through PgBouncer in transaction mode, and says why", async () => {
    const guard = guardProcess();
    const writer = await open();
    // No listen_host: the LISTEN connection goes through PgBouncer too.
    const reader = await open();
    expect(reader.changeFeedStatus!()).toMatchObject({ host: bouncer().host, port: bouncer().port });
    const seen = feedRecorder();
    const subscribedAt = performance.now();
    const subscription = reader.subscribeChanges!(seen.listener);
    try {
      const explained = await waitFor("lastError", () => reader.changeFeedStatus!().lastError !== undefined, 3000);
      console.info(`change feed through PgBouncer: first lastError ${Math.round(explained)} ms after subscribing`);
      // Several seconds of writes from another backend object, which never arrive.
      for (let n = 0; n < 30; n++) {
        await writer.put(`misconfigured/${n}`, value("x"));
        await sleep(100);
      }
      const until = performance.now();
      const longest = longestLive(seen.lives, until);
      console.info(
        `change feed through PgBouncer over ${Math.round(until - subscribedAt)} ms: ${seen.lives.filter((e) => e.live).length} live(true), longest live ${Math.round(longest)} ms`,
      );
      expect(longest).toBeLessThan(NOT_LIVE_WITHIN_MS);
      expect(seen.changes.filter((change) => change.keys?.some((key) => key.startsWith("misconfigured/")))).toEqual([]);
      const status = reader.changeFeedStatus!();
      expect(status.live).toBe(false);
      expect(status.lastError).toMatch(/probe notification .* did not arrive .*LISTEN is not in effect/);
      expect(status.reconnects).toBeGreaterThan(0);
    } finally {
      subscription.close();
      guard.dispose();
    }
    expect(guard.escaped.map(String)).toEqual([]);
  }, 30_000);

  it("is live within a second with LISTEN direct and writes through PgBouncer, and stays live", async () => {
    const guard = guardProcess();
    const writer = await open();
    const reader = await open({ listenHost: postgresServer.host, listenPort: postgresServer.port });
    const seen = feedRecorder();
    const subscription = reader.subscribeChanges!(seen.listener);
    try {
      const liveAfter = await waitLive(subscription, 3000);
      console.info(`change feed with LISTEN direct: live ${Math.round(liveAfter)} ms after subscribing`);
      expect(liveAfter).toBeLessThan(LIVE_WITHIN_MS);
      // Four seconds under light write load through the same single PgBouncer server connection.
      const until = performance.now() + 4000;
      for (let n = 0; performance.now() < until; n++) {
        await Promise.all([writer.put(`direct/${n}`, value("x")), reader.get("direct/0")]);
        await sleep(50);
      }
      await writer.put("direct/last", value("x"));
      await waitFor("the last change", () => seen.changes.some((change) => change.keys?.includes("direct/last")));
      expect(seen.lives.map((entry) => entry.live)).toEqual([true]);
      expect(reader.changeFeedStatus!()).toMatchObject({ live: true, reconnects: 0 });
      expect(reader.changeFeedStatus!().lastError).toBeUndefined();
      // The probes did go through PgBouncer.
      const stats = await bouncer().show("STATS");
      expect(Number(stats.find((row) => row.database === database().name)?.total_xact_count)).toBeGreaterThan(10);
    } finally {
      subscription.close();
      guard.dispose();
    }
    expect(guard.escaped.map(String)).toEqual([]);
  }, 30_000);

  it("is not live while its pool cannot reach the database, and live again after", async () => {
    const guard = guardProcess();
    const proxy = new TcpProxy();
    const { port } = await proxy.start();
    try {
      // The pool goes through a proxy the test breaks; the LISTEN connection goes straight to PostgreSQL.
      const reader = await open({
        host: "127.0.0.1",
        port,
        sslMode: "disable",
        listenHost: postgresServer.host,
        listenPort: postgresServer.port,
        connectionTimeoutMs: 1000,
      });
      const seen = feedRecorder();
      const subscription = reader.subscribeChanges!(seen.listener);
      try {
        await waitLive(subscription, 3000);
        const cutAt = performance.now();
        proxy.blackhole();
        await waitFor("live(false)", () => !subscription.live, 3000);
        const notLiveAfter = (seen.lives.find((entry) => !entry.live)?.at ?? Number.POSITIVE_INFINITY) - cutAt;
        console.info(`change feed: live(false) ${Math.round(notLiveAfter)} ms after the pool's path was black-holed`);
        expect(notLiveAfter).toBeLessThan(NOT_LIVE_WITHIN_MS);
        expect(reader.changeFeedStatus!().lastError).toMatch(/probe/);
        await sleep(1500);
        expect(subscription.live).toBe(false);
        proxy.pass();
        await waitLive(subscription, 5000);
        expect(seen.lives.map((entry) => entry.live)).toEqual([true, false, true]);
      } finally {
        subscription.close();
        await reader.close();
      }
    } finally {
      await proxy.close();
      guard.dispose();
    }
    expect(guard.escaped.map(String)).toEqual([]);
  }, 30_000);
});
