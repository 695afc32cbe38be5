import { wrapStorage } from "@egide/storage-core";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresBackend, backendDefinition } from "../src/index.js";
import { feedRecorder, sleep, waitFor, waitLive } from "./support/feed-recorder.js";
import { RoundTripCounter } from "./support/round-trip-counter.js";
import { createTestDatabase, postgresServer, withAdminClient, type TestDatabase } from "./support/postgres-server.js";

const value = (text: string) => Buffer.from(text, "utf8");

describe("change_feed = false", () => {
  let database: TestDatabase;
  let counter: RoundTripCounter;
  let quiet: PostgresBackend;
  let feeding: PostgresBackend;

  beforeAll(async () => {
    database = await createTestDatabase("change_feed_off");
    counter = new RoundTripCounter();
    const { host, port } = await counter.start();
    // The configuration-file way, through the backend definition the server uses.
    const config = backendDefinition.parseConfig(
      {
        host,
        port,
        database: database.name,
        username: postgresServer.username,
        ssl_mode: "disable",
        pool_min: 0,
        pool_max: 1,
        change_feed: false,
      },
      {},
    );
    expect(config.changeFeed).toBe(false);
    quiet = await backendDefinition.create({ ...config, password: postgresServer.password });
    feeding = await PostgresBackend.open({ ...database.connection, poolMin: 0, poolMax: 2 });
  }, 30_000);

  afterAll(async () => {
    await quiet?.close();
    await feeding?.close();
    await counter?.close();
    await database?.drop();
  });

  it("leaves the capability off the backend and off any decorator", () => {
    expect("subscribeChanges" in quiet).toBe(false);
    expect(quiet.subscribeChanges).toBeUndefined();
    expect("changeFeedStatus" in quiet).toBe(false);
    expect("subscribeChanges" in wrapStorage(quiet)).toBe(false);
    // getMany does not depend on the feed.
    expect(typeof quiet.getMany).toBe("function");
    // With the feed on, both are there.
    expect(typeof feeding.subscribeChanges).toBe("function");
    expect(typeof wrapStorage(feeding).subscribeChanges).toBe("function");
    expect(typeof feeding.changeFeedStatus).toBe("function");
  });

  it("sends no NOTIFY for any write, and keeps single writes to one round trip", async () => {
    const channel = feeding.changeFeedStatus!().channel;
    const heard: string[] = [];
    const seen = feedRecorder();
    const subscription = feeding.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      await withAdminClient(database.name, async (client: pg.Client) => {
        client.on("notification", (message) => heard.push(message.payload ?? ""));
        await client.query(`LISTEN "${channel}"`);
        await quiet.get("quiet/warm");
        counter.reset();
        await quiet.put("quiet/put", value("x"));
        await quiet.delete("quiet/delete");
        expect(counter.roundTrips).toBe(2);
        counter.reset();
        await quiet.transaction(async (tx) => {
          await tx.put("quiet/tx", value("x"));
          await tx.putMany?.([{ key: "quiet/many", value: value("y") }]);
          await tx.delete("quiet/tx-delete");
        });
        expect(counter.simpleQueries.at(-1)).toBe("COMMIT");
        // A write by a backend with the feed: the raw listener hears it, so it was listening.
        await feeding.put("quiet/marker", value("x"));
        await waitFor("the marker on the raw listener", () => heard.length > 0);
        await sleep(50);
      });
      expect(heard.map((payload) => JSON.parse(payload).k)).toEqual([["quiet/marker"]]);
      expect(seen.keys()).toEqual([["quiet/marker"]]);
    } finally {
      subscription.close();
    }
  });
});
