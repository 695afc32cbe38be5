import { execFile } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import type { StorageChange } from "@egide/storage-core";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_CHANGE_KEYS } from "../src/changed-keys.js";
import { SqliteChangeFeed } from "../src/sqlite-change-feed.js";
import { SqliteBackend } from "../src/index.js";
import { recordChanges, sleep, waitFor } from "./change-recorder.js";
import { tempDirectory } from "./temp-database.js";

const run = promisify(execFile);
const temp = tempDirectory("sqlite-change-feed");
afterAll(() => temp.remove());

const packageDir = fileURLToPath(new URL("..", import.meta.url));
// How soon another connection's commit must be seen, with the default 10 ms polling.
const DETECTION_BOUND_MS = 200;

/** A put through a plain better-sqlite3 connection in another process, as another program would write. */
async function putFromAnotherProcess(file: string, key: string): Promise<void> {
  const script = `
    const Database = require("better-sqlite3");
    const db = new Database(process.argv[1]);
    db.pragma("busy_timeout = 5000");
    db.prepare("INSERT INTO egide_storage (key, value, created_at, updated_at) VALUES (?, ?, 0, 0) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(process.argv[2], Buffer.from("from another process"));
    db.close();`;
  // From the package directory, where better-sqlite3 resolves.
  await run(process.execPath, ["-e", script, file, key], { cwd: packageDir, timeout: 10_000 });
}

describe.each([
  ["file", () => temp.file()],
  [":memory:", () => ":memory:"],
])("SQLite change feed: this object's commits (%s)", (_label, path) => {
  it("is live at once, and delivers each put and delete before the write resolves", async () => {
    const backend = SqliteBackend.open({ path: path() });
    const recorder = recordChanges(backend);
    expect(recorder.lives).toEqual([true]);
    expect(recorder.subscription.live).toBe(true);
    const before = Date.now();
    const seenWhenResolved: number[] = [];
    await backend.put("a", Buffer.from("1")).then(() => seenWhenResolved.push(recorder.changes.length));
    await backend.delete("a").then(() => seenWhenResolved.push(recorder.changes.length));
    // An absent key's delete is still a delete through this object.
    await backend.delete("never").then(() => seenWhenResolved.push(recorder.changes.length));
    expect(seenWhenResolved).toEqual([1, 2, 3]);
    expect(recorder.keys()).toEqual([["a"], ["a"], ["never"]]);
    expect(recorder.changes.map((change) => change.position)).toEqual([1, 2, 3]);
    for (const change of recorder.changes) {
      expect(change.committedAt).toBeGreaterThanOrEqual(before);
      expect(change.committedAt).toBeLessThanOrEqual(Date.now());
    }
    await backend.close();
  });

  it("delivers a queued write's keys before it resolves too", async () => {
    const backend = SqliteBackend.open({ path: path() });
    const recorder = recordChanges(backend);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const transaction = backend.transaction(async (tx) => {
      await tx.put("first", Buffer.from("1"));
      await gate;
    });
    // The transaction holds the writer: this put waits in the queue.
    const put = backend.put("second", Buffer.from("2")).then(() => recorder.keys());
    release();
    expect(await put).toEqual([["first"], ["second"]]);
    await transaction;
    await backend.close();
  });

  it("publishes a read-write transaction's keys once each, after it commits and before it resolves", async () => {
    const backend = SqliteBackend.open({ path: path() });
    await backend.put("old", Buffer.from("x"));
    const recorder = recordChanges(backend);
    const result = await backend.transaction(async (tx) => {
      await tx.put("b", Buffer.from("1"));
      await tx.delete("old");
      await tx.put("b", Buffer.from("2"));
      await tx.putMany?.([
        { key: "c", value: Buffer.from("3") },
        { key: "a", value: Buffer.from("4") },
      ]);
      await tx.get("b");
      // Nothing is published while the transaction is open.
      return recorder.changes.length;
    });
    expect(result).toBe(0);
    expect(recorder.keys()).toEqual([["b", "old", "c", "a"]]);
    await backend.close();
  });

  it("publishes nothing for rolled-back, read-only, write-less and audit-only work", async () => {
    const backend = SqliteBackend.open({ path: path() });
    await backend.put("k", Buffer.from("v"));
    const recorder = recordChanges(backend);
    const oops = new Error("roll back");
    await expect(
      backend.transaction(async (tx) => {
        await tx.put("k", Buffer.from("rolled back"));
        throw oops;
      }),
    ).rejects.toBe(oops);
    await backend.transaction(async (tx) => tx.get("k"), { readOnly: true });
    await backend.transaction(async (tx) => [await tx.get("k"), await tx.list("")]);
    const entry = { operation: "test", path: "k", success: true };
    await backend.audit.append(entry);
    await backend.audit.appendMany([entry, entry]);
    await backend.transaction(async (tx) => {
      await (tx as unknown as { appendAudit(e: typeof entry): Promise<unknown> }).appendAudit(entry);
    });
    expect(await backend.get("k")).toEqual(Buffer.from("v"));
    expect(recorder.changes).toEqual([]);
    await backend.close();
  });

  it(`publishes a transaction of more than ${MAX_CHANGE_KEYS} keys as one change with unknown keys`, async () => {
    const backend = SqliteBackend.open({ path: path() });
    const recorder = recordChanges(backend);
    await backend.transaction(async (tx) => {
      for (let i = 0; i <= MAX_CHANGE_KEYS; i++) await tx.put(`bulk/${i}`, Buffer.from("v"));
    });
    await backend.transaction(async (tx) => {
      for (let i = 0; i < MAX_CHANGE_KEYS; i++) await tx.put(`bulk/${i}`, Buffer.from("w"));
    });
    expect(recorder.changes.map((change) => change.keys?.length ?? null)).toEqual([null, MAX_CHANGE_KEYS]);
    await backend.close();
  });

  it("keeps delivering to the others, and the write succeeds, when a subscriber throws", async () => {
    const backend = SqliteBackend.open({ path: path() });
    const thrower = backend.subscribeChanges({
      change: () => {
        throw new Error("bad subscriber");
      },
      live: () => {
        throw new Error("bad subscriber");
      },
    });
    const recorder = recordChanges(backend);
    await backend.put("a", Buffer.from("1"));
    await backend.transaction(async (tx) => tx.put("b", Buffer.from("2")));
    expect(recorder.keys()).toEqual([["a"], ["b"]]);
    expect(await backend.getMany(["a", "b"])).toEqual([Buffer.from("1"), Buffer.from("2")]);
    thrower.close();
    await backend.close();
    expect(recorder.lives).toEqual([true, false]);
  });

  it("stops delivering to a closed subscription, and tells the others it is not live when the backend closes", async () => {
    const backend = SqliteBackend.open({ path: path() });
    const leaving = recordChanges(backend);
    const staying = recordChanges(backend);
    await backend.put("a", Buffer.from("1"));
    leaving.subscription.close();
    leaving.subscription.close();
    expect(leaving.subscription.live).toBe(false);
    await backend.put("b", Buffer.from("2"));
    // A write queued before close() is still delivered; close() then ends the feed.
    const late = backend.put("c", Buffer.from("3"));
    await backend.close();
    await late;
    expect(leaving.keys()).toEqual([["a"]]);
    expect(leaving.lives).toEqual([true]);
    expect(staying.keys()).toEqual([["a"], ["b"], ["c"]]);
    expect(staying.lives).toEqual([true, false]);
    expect(staying.subscription.live).toBe(false);
    // Subscribing to a closed backend is never live and hears nothing.
    const after = recordChanges(backend);
    expect(after.subscription.live).toBe(false);
    expect(after.lives).toEqual([]);
    await backend.close();
  });
});

describe("SQLite change feed: other connections' commits", () => {
  it("does not mistake this object's own commits, even during a long transaction, for another connection's", async () => {
    const file = temp.file();
    const backend = SqliteBackend.open({ path: file, changePollIntervalMs: 2 });
    const recorder = recordChanges(backend);
    await backend.put("a", Buffer.from("1"));
    // Polls run while this transaction holds the writer (between its statements).
    await backend.transaction(async (tx) => {
      await tx.put("b", Buffer.from("2"));
      await sleep(40);
      await tx.put("c", Buffer.from("3"));
      await sleep(40);
    });
    await backend.audit.append({ operation: "test", path: "a", success: true });
    await backend.transaction(async (tx) => tx.putMany?.([{ key: "d", value: Buffer.from("4") }]));
    await sleep(60);
    expect(recorder.keys()).toEqual([["a"], ["b", "c"], ["d"]]);
    // And polling was running all along: another connection's commit is seen.
    const other = new Database(file);
    other.prepare("DELETE FROM egide_storage WHERE key = 'a'").run();
    other.close();
    await waitFor(() => recorder.changes.length === 4, DETECTION_BOUND_MS, "the other connection's commit");
    expect(recorder.keys()[3]).toBeNull();
    await backend.close();
  });

  it("lets two backend objects on one file see each other's commits, with unknown keys, within the bound", async () => {
    const file = temp.file();
    const one = SqliteBackend.open({ path: file });
    const two = SqliteBackend.open({ path: file });
    const atOne = recordChanges(one);
    const atTwo = recordChanges(two);
    await two.put("from/two", Buffer.from("2"));
    const elapsed = await waitFor(() => atOne.changes.length === 1, DETECTION_BOUND_MS, "one seeing two's put");
    expect(elapsed).toBeLessThan(DETECTION_BOUND_MS);
    expect(atOne.keys()).toEqual([null]);
    expect(atTwo.keys()).toEqual([["from/two"]]);
    const committed = Date.now();
    await one.transaction(async (tx) => {
      await tx.put("from/one", Buffer.from("1"));
      await tx.delete("from/two");
    });
    await waitFor(() => atTwo.changes.length === 2, DETECTION_BOUND_MS, "two seeing one's transaction");
    expect(atTwo.keys()).toEqual([["from/two"], null]);
    expect(atTwo.changes[1]?.committedAt).toBeGreaterThanOrEqual(committed);
    expect(atOne.keys()).toEqual([null, ["from/one", "from/two"]]);
    // What two is told about, two can read.
    expect(await two.getMany(["from/one", "from/two"])).toEqual([Buffer.from("1"), null]);
    // Another object's rolled-back transaction is no commit.
    await two
      .transaction(async (tx) => {
        await tx.put("x", Buffer.from("never"));
        throw new Error("roll back");
      })
      .catch(() => undefined);
    await sleep(60);
    expect(atOne.changes).toHaveLength(2);
    await Promise.all([one.close(), two.close()]);
  });

  it("sees a commit by another process", async () => {
    const file = temp.file();
    const backend = SqliteBackend.open({ path: file });
    const recorder = recordChanges(backend);
    await putFromAnotherProcess(file, "written/elsewhere");
    const elapsed = await waitFor(() => recorder.changes.length > 0, DETECTION_BOUND_MS, "the other process's commit");
    expect(elapsed).toBeLessThan(DETECTION_BOUND_MS);
    expect(new Set(recorder.keys())).toEqual(new Set([null]));
    expect(await backend.get("written/elsewhere")).toEqual(Buffer.from("from another process"));
    expect(recorder.lives).toEqual([true]);
    await backend.close();
  });

  it("hears nothing of other connections while nobody is subscribed, and takes a fresh start on the next subscription", async () => {
    const file = temp.file();
    const backend = SqliteBackend.open({ path: file, changePollIntervalMs: 2 });
    const other = SqliteBackend.open({ path: file });
    const first = recordChanges(backend);
    await other.put("seen", Buffer.from("1"));
    await waitFor(() => first.changes.length === 1, DETECTION_BOUND_MS);
    first.subscription.close();
    await other.put("unseen", Buffer.from("2"));
    await sleep(30);
    const second = recordChanges(backend);
    await sleep(30);
    // The commit made while nobody listened is before the new subscription's start.
    expect(second.changes).toEqual([]);
    expect(first.keys()).toEqual([null]);
    await other.put("seen/again", Buffer.from("3"));
    await waitFor(() => second.changes.length === 1, DETECTION_BOUND_MS);
    await Promise.all([backend.close(), other.close()]);
  });

  it("never blocks the event loop on another connection's lock, and is not live while locked out for busy_timeout", async () => {
    // Under a rollback journal an exclusive lock keeps every reader out (WAL never does).
    const file = temp.file();
    const busyTimeoutMs = 300;
    const backend = SqliteBackend.open({ path: file, journalMode: "DELETE", busyTimeoutMs, changePollIntervalMs: 5 });
    const recorder = recordChanges(backend);
    const other = new Database(file);
    other.exec("BEGIN EXCLUSIVE");
    other.prepare("INSERT INTO egide_storage (key, value, created_at, updated_at) VALUES ('locked', x'00', 0, 0)").run();
    const locked = performance.now();
    let longestGap = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
    }, 2);
    try {
      await waitFor(() => recorder.lives.length === 2, 5 * busyTimeoutMs, "the feed saying it is not live");
      expect(recorder.lives).toEqual([true, false]);
      expect(performance.now() - locked).toBeGreaterThanOrEqual(busyTimeoutMs - 10);
      // Each poll failed at once instead of waiting busy_timeout for the lock.
      expect(longestGap).toBeLessThan(busyTimeoutMs / 2);
      other.exec("COMMIT");
      await waitFor(() => recorder.lives.length === 3 && recorder.changes.length === 1, DETECTION_BOUND_MS, "the feed back");
      expect(recorder.lives).toEqual([true, false, true]);
      expect(recorder.keys()).toEqual([null]);
      expect(await backend.get("locked")).toEqual(Buffer.from([0]));
    } finally {
      clearInterval(ticker);
      if (other.inTransaction) other.exec("ROLLBACK");
      other.close();
      await backend.close();
    }
  });

  it("does not keep a process alive: a subscribed process that is done exits", async () => {
    const file = temp.file();
    const dist = pathToFileURL(`${packageDir}dist/index.js`).href;
    const script = `
      import { SqliteBackend } from ${JSON.stringify(dist)};
      const backend = SqliteBackend.open({ path: process.argv[1] });
      const subscription = backend.subscribeChanges({ change() {}, live() {} });
      await backend.put("k", Buffer.from("v"));
      process.stdout.write(JSON.stringify({ live: subscription.live }));`;
    const started = performance.now();
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script, file], { timeout: 4_000 });
    expect(JSON.parse(stdout)).toEqual({ live: true });
    expect(performance.now() - started).toBeLessThan(4_000);
  });
});

describe("SqliteChangeFeed polling", () => {
  it("polls only while someone is subscribed", async () => {
    const file = temp.file();
    const backend = SqliteBackend.open({ path: file });
    const db = new Database(file);
    let polls = 0;
    const feed = new SqliteChangeFeed({
      readVersion: () => {
        polls += 1;
        return db.pragma("data_version", { simple: true }) as number;
      },
      pollIntervalMs: 2,
      failureGraceMs: 1000,
    });
    await sleep(20);
    expect(polls).toBe(0);
    expect(feed.polling).toBe(false);
    const changes: StorageChange[] = [];
    const listener = { change: (change: StorageChange) => changes.push(change), live: () => undefined };
    const one = feed.subscribe(listener);
    const two = feed.subscribe(listener);
    expect(feed.polling).toBe(true);
    await waitFor(() => polls >= 5, 1000, "polls");
    await backend.put("k", Buffer.from("v"));
    await waitFor(() => changes.length === 2, DETECTION_BOUND_MS, "both subscriptions told");
    expect(changes.map((change) => change.keys)).toEqual([null, null]);
    one.close();
    expect(feed.polling).toBe(true);
    two.close();
    expect(feed.polling).toBe(false);
    const stoppedAt = polls;
    await backend.put("k", Buffer.from("w"));
    await sleep(30);
    expect(polls).toBe(stoppedAt);
    expect(changes).toHaveLength(2);
    // A new subscriber starts polling again, from a new baseline.
    const three = feed.subscribe(listener);
    await waitFor(() => polls >= stoppedAt + 3, 1000, "polls again");
    expect(changes).toHaveLength(2);
    three.close();
    feed.close();
    db.close();
    await backend.close();
  });

  it("is never live, and polls nothing, once closed", async () => {
    let polls = 0;
    const feed = new SqliteChangeFeed({ readVersion: () => ++polls, pollIntervalMs: 2, failureGraceMs: 1000 });
    const lives: boolean[] = [];
    const subscription = feed.subscribe({ change: () => undefined, live: (live) => lives.push(live) });
    feed.close();
    const closedAt = polls;
    await sleep(20);
    expect(polls).toBe(closedAt);
    expect(lives).toEqual([true, false]);
    expect(subscription.live).toBe(false);
    expect(feed.polling).toBe(false);
  });
});
