import { describe, expect, it } from "vitest";
import { feedRecorder, sleep, waitFor, waitLive } from "./support/feed-recorder.js";
import { postgresServer } from "./support/postgres-server.js";
import { usePgBouncer } from "./support/pgbouncer-fixture.js";

const value = (text: string) => Buffer.from(text, "utf8");

// The production layout behind PgBouncer in transaction mode: every query and every NOTIFY goes
// through PgBouncer, and only the change feed's LISTEN connection goes straight to PostgreSQL.
describe("the change feed with queries through PgBouncer (transaction mode)", () => {
  const { open, database, bouncer } = usePgBouncer("change_feed_pgbouncer", { defaultPoolSize: 4, poolMax: 4 });

  it("delivers commits made through PgBouncer to a LISTEN on a direct connection", async () => {
    const writer = await open();
    const reader = await open({ listenHost: postgresServer.host, listenPort: postgresServer.port });
    expect(reader.changeFeedStatus!()).toMatchObject({ host: postgresServer.host, port: postgresServer.port });
    const seen = feedRecorder();
    const subscription = reader.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      await writer.put("bouncer/put", value("x"));
      await writer.delete("bouncer/delete");
      await writer.transaction(async (tx) => {
        await tx.put("bouncer/tx1", value("x"));
        await tx.putMany?.([{ key: "bouncer/tx2", value: value("y") }]);
      });
      await writer
        .transaction(async (tx) => {
          await tx.put("bouncer/rolled-back", value("x"));
          throw new Error("abandon");
        })
        .catch(() => undefined);
      await writer.put("bouncer/last", value("x"));
      await waitFor("the last change", () => seen.changes.some((change) => change.keys?.includes("bouncer/last")));
      await sleep(100);
      expect(seen.keys()).toEqual([["bouncer/put"], ["bouncer/delete"], ["bouncer/tx1", "bouncer/tx2"], ["bouncer/last"]]);
      // The writes did go through PgBouncer, pooled per transaction.
      const pools = await bouncer().show("POOLS");
      expect(pools.find((row) => row.database === database().name)?.pool_mode).toBe("transaction");
      const stats = await bouncer().show("STATS");
      expect(Number(stats.find((row) => row.database === database().name)?.total_xact_count)).toBeGreaterThan(5);
      expect(subscription.live).toBe(true);
    } finally {
      subscription.close();
    }
  }, 20_000);

  it("does not stay live with its LISTEN through PgBouncer in transaction mode", async () => {
    // The misconfiguration the listen_* options exist for: LISTEN lands on one server
    // connection, which PgBouncer then hands to others, and notifications reaching it between
    // transactions are dropped. The delivery probe (a pg_notify through the pool that must reach
    // the LISTEN connection) never makes the round trip, so the feed never goes live.
    const writer = await open();
    // Keep the other server connections busy enough that the listener is moved around.
    const reader = await open();
    const seen = feedRecorder();
    const subscription = reader.subscribeChanges!(seen.listener);
    const explained = () => reader.changeFeedStatus!().lastError !== undefined;
    let stop = false;
    const load = (async () => {
      for (let n = 0; !stop && n < 2000; n++) {
        await Promise.all([writer.put(`load/${n}`, value("x")), writer.get("load/0"), reader.get("load/0")]);
        await sleep(10);
      }
    })();
    try {
      await waitFor("lastError", explained, 1000);
      await sleep(2000);
      expect(seen.lives.filter((entry) => entry.live)).toEqual([]);
      expect(subscription.live).toBe(false);
      expect(reader.changeFeedStatus!().lastError).toMatch(/LISTEN is not in effect/);
    } finally {
      stop = true;
      subscription.close();
      await load;
    }
  }, 40_000);
});
