import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_NOTIFY_PAYLOAD_BYTES, changeChannel, decodeChange, encodeChange } from "../src/change-notification.js";
import { PostgresBackend } from "../src/index.js";
import { feedRecorder, waitFor, waitLive } from "./support/feed-recorder.js";
import { createTestDatabase, type TestDatabase } from "./support/postgres-server.js";

describe("the change channel and payload", () => {
  it("names the channel after the schema, within PostgreSQL's 63 bytes", () => {
    expect(changeChannel("public")).toBe("egide_changes_public");
    const long = `s${"x".repeat(60)}a`;
    const other = `s${"x".repeat(60)}b`;
    expect(long).toHaveLength(62);
    for (const schema of [long, other, "y".repeat(63), `egide_${"z".repeat(43)}`]) {
      const channel = changeChannel(schema);
      expect(Buffer.byteLength(channel)).toBeLessThanOrEqual(63);
      expect(channel).toMatch(/^egide_changes_[a-z0-9_]+$/);
    }
    // Two long names that differ only at the end still get two channels.
    expect(changeChannel(long)).not.toBe(changeChannel(other));
    // 49 characters is the longest schema kept as is.
    expect(changeChannel("q".repeat(49))).toBe(`egide_changes_${"q".repeat(49)}`);
  });

  it("encodes keys, and null when they would pass the limit", () => {
    expect(JSON.parse(encodeChange("me", 42, ["a", "b"]))).toEqual({ o: "me", t: 42, k: ["a", "b"] });
    // Multi-byte keys count in UTF-8 bytes.
    const wide = Array.from({ length: 25 }, (_, n) => `${"€".repeat(130)}${n}`);
    expect(Buffer.byteLength(JSON.stringify(wide))).toBeGreaterThan(MAX_NOTIFY_PAYLOAD_BYTES);
    expect(JSON.stringify(wide).length).toBeLessThan(MAX_NOTIFY_PAYLOAD_BYTES);
    expect(JSON.parse(encodeChange("me", 42, wide))).toEqual({ o: "me", t: 42, k: null });
    const many = Array.from({ length: 100_000 }, (_, n) => `bulk/${n}`);
    expect(JSON.parse(encodeChange("me", 42, many)).k).toBeNull();
    // Just under the limit still carries its keys.
    const fits: string[] = [];
    while (JSON.parse(encodeChange("me", 42, [...fits, "k".repeat(100)])).k !== null) fits.push("k".repeat(100));
    expect(fits.length).toBeGreaterThan(60);
    expect(JSON.parse(encodeChange("me", 42, fits)).k).toHaveLength(fits.length);
    expect(Buffer.byteLength(encodeChange("me", 42, fits))).toBeLessThanOrEqual(MAX_NOTIFY_PAYLOAD_BYTES);
  });

  it("decodes defensively: anything malformed is unknown keys", () => {
    expect(decodeChange('{"o":"x","t":5,"k":["a","a","b"]}', 9)).toEqual({ origin: "x", committedAt: 5, keys: ["a", "b"] });
    expect(decodeChange('{"o":"x","t":5,"k":null}', 9)).toEqual({ origin: "x", committedAt: 5, keys: null });
    for (const bad of [undefined, "", "null", "[]", "7", "{", '{"t":1,"k":[]}', '{"o":3,"k":[]}']) {
      expect(decodeChange(bad, 9)).toEqual({ origin: "", committedAt: 9, keys: null });
    }
    expect(decodeChange('{"o":"x","t":"late","k":["a"]}', 9)).toEqual({ origin: "x", committedAt: 9, keys: ["a"] });
    expect(decodeChange('{"o":"x","t":1,"k":["a",1]}', 9)).toEqual({ origin: "x", committedAt: 1, keys: null });
    expect(decodeChange('{"o":"x","t":1,"k":"a"}', 9)).toEqual({ origin: "x", committedAt: 1, keys: null });
  });
});

describe("a schema whose name is as long as PostgreSQL allows", () => {
  let database: TestDatabase;
  const opened: PostgresBackend[] = [];
  const schema = `s${"long".repeat(15)}xy`;

  beforeAll(async () => {
    database = await createTestDatabase("change_channel");
  });

  afterAll(async () => {
    for (const backend of opened) await backend.close();
    await database?.drop();
  });

  it("still carries changes between two backend objects", async () => {
    expect(schema).toHaveLength(63);
    for (let i = 0; i < 2; i++) opened.push(await PostgresBackend.open({ ...database.connection, schema, poolMin: 0, poolMax: 2 }));
    const [writer, reader] = opened as [PostgresBackend, PostgresBackend];
    expect(reader.changeFeedStatus!().channel).toBe(changeChannel(schema));
    const seen = feedRecorder();
    const subscription = reader.subscribeChanges!(seen.listener);
    try {
      await waitLive(subscription);
      await writer.put("long/k", Buffer.from("x"));
      await waitFor("the change", () => seen.changes.length > 0);
      expect(seen.keys()).toEqual([["long/k"]]);
    } finally {
      subscription.close();
    }
  });
});
