import { existsSync, readdirSync } from "node:fs";
import Database from "better-sqlite3";
import { StorageError } from "@egide/storage-core";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteBackend } from "../src/index.js";
import { tempDirectory } from "./temp-database.js";

const temp = tempDirectory("sqlite-file");
afterAll(() => temp.remove());

describe("SQLite backend on a file", () => {
  it("keeps data across reopen", async () => {
    const file = temp.file();
    const first = SqliteBackend.open({ path: file });
    await first.put("a/b", Buffer.from("persisted"));
    await first.close();
    const second = SqliteBackend.open({ path: file });
    expect(await second.get("a/b")).toEqual(Buffer.from("persisted"));
    await second.close();
  });

  it("lets two backends on one file see each other's commits", async () => {
    const file = temp.file();
    const one = SqliteBackend.open({ path: file });
    const two = SqliteBackend.open({ path: file });
    await one.put("shared", Buffer.from("1"));
    expect(await two.get("shared")).toEqual(Buffer.from("1"));
    await two.transaction(async (tx) => {
      await tx.put("shared", Buffer.from("2"));
      await tx.put("other", Buffer.from("3"));
    });
    expect(await one.list("")).toEqual(["other", "shared"]);
    expect(await one.get("shared")).toEqual(Buffer.from("2"));
    await Promise.all([one.close(), two.close()]);
  });

  it("waits for another connection's write lock within busy_timeout, then reports CONFLICT", async () => {
    const file = temp.file();
    const backend = SqliteBackend.open({ path: file, busyTimeoutMs: 100 });
    const other = new Database(file);
    other.exec("BEGIN IMMEDIATE");
    const started = Date.now();
    const failure = await backend.put("k", Buffer.from("v")).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(StorageError.isInstance(failure, "CONFLICT")).toBe(true);
    expect((failure as StorageError).retryable).toBe(true);
    other.exec("ROLLBACK");
    other.close();
    await backend.put("k", Buffer.from("v"));
    expect(await backend.get("k")).toEqual(Buffer.from("v"));
    await backend.close();
  });

  it("gives a read-only transaction a stable snapshot while writers commit", async () => {
    const backend = SqliteBackend.open({ path: temp.file() });
    await backend.put("n", Buffer.from("1"));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const inside = new Promise<void>((resolve) => (started = resolve));
    const seen = backend.transaction(
      async (tx) => {
        const before = await tx.get("n");
        started();
        await gate;
        return [before, await tx.get("n"), await tx.list("")];
      },
      { readOnly: true },
    );
    await inside;
    // A writer is not held up by the open read-only transaction...
    await backend.put("n", Buffer.from("2"));
    await backend.put("m", Buffer.from("x"));
    release();
    // ...and the transaction still sees the state as of its start.
    expect(await seen).toEqual([Buffer.from("1"), Buffer.from("1"), ["n"]]);
    expect(await backend.get("n")).toEqual(Buffer.from("2"));
    await backend.close();
  });

  it("turns a call to the backend from inside its own transaction into an error instead of a deadlock", async () => {
    const backend = SqliteBackend.open({ path: temp.file() });
    const failure = await backend
      .transaction(async (tx) => {
        await tx.put("a", Buffer.from("1"));
        await backend.put("b", Buffer.from("2"));
      })
      .catch((e: unknown) => e);
    expect((failure as Error).message).toMatch(/inside its own transaction callback/);
    expect(await backend.exists("a")).toBe(false);
    await backend.close();
  });

  it("close waits for an open transaction to finish", async () => {
    const backend = SqliteBackend.open({ path: temp.file() });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tx = backend.transaction(async (t) => {
      await gate;
      await t.put("late", Buffer.from("x"));
    });
    const closed = backend.close();
    await expect(backend.get("late")).rejects.toMatchObject({ code: "CLOSED" });
    release();
    await tx;
    await closed;
    const reopened = SqliteBackend.open({ path: backend.options.path });
    expect(await reopened.get("late")).toEqual(Buffer.from("x"));
    await reopened.close();
  });

  it("reports health with a measured latency, and unhealthy once closed", async () => {
    const backend = SqliteBackend.open({ path: temp.file() });
    const health = await backend.health();
    expect(health.status).toBe("healthy");
    expect(health.latencyMs).toBeGreaterThan(0);
    await backend.close();
    expect(await backend.health()).toMatchObject({ status: "unhealthy", error: "sqlite: backend is closed" });
  });
});

describe("online backup", () => {
  it("copies a consistent database while writes go on, and never leaves a partial file", async () => {
    const backend = SqliteBackend.open({ path: temp.file() });
    for (let i = 0; i < 2000; i++) await backend.put(`k/${String(i).padStart(5, "0")}`, Buffer.alloc(512, i % 251));
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await backend.transaction(async (tx) => {
          await tx.put(`live/${i}/a`, Buffer.from("a"));
          await tx.put(`live/${i}/b`, Buffer.from("b"));
        });
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const destination = temp.file("backup.sqlite");
    await backend.backup(destination);
    writing = false;
    await writer;
    expect(readdirSync(temp.dir).some((f) => f.includes(".partial-"))).toBe(false);

    const copy = SqliteBackend.open({ path: destination });
    expect(copy.pragmas().schemaVersion).toBe(1);
    let count = 0;
    for await (const entry of copy.scan("k/")) {
      // Buffer.equals: toEqual walks 512-byte buffers element by element, 2,000 times.
      expect(entry.value.equals(Buffer.alloc(512, Number(entry.key.slice(2)) % 251))).toBe(true);
      count++;
    }
    expect(count).toBe(2000);
    // Every transaction of the live writer is in the copy whole or not at all.
    for (const folder of await copy.list("live/")) {
      expect(await copy.list(`live/${folder}`)).toEqual(["a", "b"]);
    }
    const raw = new Database(destination, { readonly: true });
    expect(raw.pragma("integrity_check", { simple: true })).toBe("ok");
    raw.close();
    await copy.close();
    await backend.close();
  });

  it("backs up an in-memory database", async () => {
    const backend = SqliteBackend.open({ path: ":memory:" });
    await backend.put("only", Buffer.from("here"));
    const destination = temp.file("memory-backup.sqlite");
    await backend.backup(destination);
    const copy = SqliteBackend.open({ path: destination });
    expect(await copy.get("only")).toEqual(Buffer.from("here"));
    await Promise.all([copy.close(), backend.close()]);
  });

  it("backs up a database in rollback-journal mode", async () => {
    const backend = SqliteBackend.open({ path: temp.file(), journalMode: "DELETE" });
    await backend.put("journal", Buffer.from("delete"));
    const destination = temp.file("delete-mode-backup.sqlite");
    await backend.backup(destination);
    const copy = SqliteBackend.open({ path: destination, journalMode: "DELETE" });
    expect(await copy.get("journal")).toEqual(Buffer.from("delete"));
    await Promise.all([copy.close(), backend.close()]);
  });

  it("refuses to overwrite an existing file", async () => {
    const backend = SqliteBackend.open({ path: temp.file() });
    const destination = temp.file("exists.sqlite");
    await backend.backup(destination);
    await expect(backend.backup(destination)).rejects.toThrow(/already exists/);
    expect(existsSync(destination)).toBe(true);
    await backend.close();
  });
});
