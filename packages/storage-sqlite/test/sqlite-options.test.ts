import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import { BackendRegistry, ConfigError, openStorageAdapter } from "@egide/storage-core";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteBackend, backendDefinition, parseSqliteConfig } from "../src/index.js";
import { tempDirectory } from "./temp-database.js";

const temp = tempDirectory("sqlite-options");
afterAll(() => temp.remove());

describe("parseSqliteConfig", () => {
  it("applies the documented defaults", () => {
    expect(parseSqliteConfig({ path: "/var/lib/egide/egide.db" })).toEqual({
      path: "/var/lib/egide/egide.db",
      journalMode: "WAL",
      synchronous: "NORMAL",
      cacheSizeKiB: 10000,
      busyTimeoutMs: 5000,
      maxValueBytes: 1024 * 1024,
      maxReaders: 4,
      changePollIntervalMs: 10,
    });
  });

  it("reads every option of the specification", () => {
    expect(
      parseSqliteConfig({ path: ":memory:", journal_mode: "delete", synchronous: "FULL", cache_size: 50000, busy_timeout: "250ms" }),
    ).toMatchObject({ path: ":memory:", journalMode: "DELETE", synchronous: "FULL", cacheSizeKiB: 50000, busyTimeoutMs: 250 });
  });

  it("reads change_poll_interval as a duration, and changePollIntervalMs in the programmatic form", async () => {
    expect(parseSqliteConfig({ path: "x.db", change_poll_interval: "250ms" }).changePollIntervalMs).toBe(250);
    expect(parseSqliteConfig({ path: "x.db", change_poll_interval: "10s" }).changePollIntervalMs).toBe(10_000);
    expect(parseSqliteConfig({ path: "x.db", change_poll_interval: 1 }).changePollIntervalMs).toBe(1);
    const backend = SqliteBackend.open({ path: ":memory:", changePollIntervalMs: 50 });
    expect(backend.options.changePollIntervalMs).toBe(50);
    await backend.close();
    expect(() => SqliteBackend.open({ path: ":memory:", changePollIntervalMs: 0 })).toThrow(
      /change_poll_interval: must be between 1ms and 10s/,
    );
  });

  it.each([
    [{}, "storage.sqlite.path: is required"],
    [{ path: "" }, "storage.sqlite.path: is required"],
    [{ path: "x.db", journal_mode: "OFF" }, "storage.sqlite.journal_mode: must be one of"],
    [{ path: "x.db", journal_mode: "MEMORY" }, "storage.sqlite.journal_mode: must be one of"],
    [{ path: "x.db", synchronous: "SOMETIMES" }, "storage.sqlite.synchronous: must be one of"],
    [{ path: "x.db", cache_size: "big" }, "storage.sqlite.cache_size: must be a whole number"],
    [{ path: "x.db", cache_size: 1 }, "storage.sqlite.cache_size: must be at least 64"],
    [{ path: "x.db", busy_timeout: "5 seconds" }, "storage.sqlite.busy_timeout: "],
    [{ path: "x.db", busy_timeout: -1 }, "storage.sqlite.busy_timeout: "],
    [{ path: "x.db", change_poll_interval: "0ms" }, "storage.sqlite.change_poll_interval: must be between 1ms and 10s, got 0ms"],
    [{ path: "x.db", change_poll_interval: "0.5ms" }, "storage.sqlite.change_poll_interval: must be between 1ms and 10s"],
    [{ path: "x.db", change_poll_interval: "11s" }, "storage.sqlite.change_poll_interval: must be between 1ms and 10s, got 11000ms"],
    [{ path: "x.db", change_poll_interval: "often" }, "storage.sqlite.change_poll_interval: "],
    [{ path: "x.db", change_poll_interval: -5 }, "storage.sqlite.change_poll_interval: "],
    [{ path: "x.db", journal: "WAL" }, "unknown option storage.sqlite.journal"],
    ["x.db", "storage.sqlite: must be a table"],
  ])("rejects %j with an error naming the option", (table, message) => {
    const failure = (() => {
      try {
        parseSqliteConfig(table);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(ConfigError.isInstance(failure)).toBe(true);
    expect((failure as Error).message).toContain(message);
  });

  it("is what the backend definition parses", async () => {
    const config = backendDefinition.parseConfig({ path: temp.file(), cache_size: 2048 });
    const backend = await backendDefinition.create(config);
    expect(backend.type).toBe("sqlite");
    expect(backend.pragmas().cacheSize).toBe(-2048);
    await backend.close();
  });

  it("says a database file is missing, so that a storage to read from is refused instead of created", async () => {
    const missing = temp.file();
    expect(backendDefinition.findMissing?.(backendDefinition.parseConfig({ path: missing }))).toBe(
      `there is no SQLite database at ${missing}`,
    );
    expect(backendDefinition.findMissing?.(backendDefinition.parseConfig({ path: ":memory:" }))).toBeUndefined();
    const registry = new BackendRegistry().register(backendDefinition);
    await expect(openStorageAdapter({ type: "sqlite", options: { path: missing } }, { registry, mustExist: true })).rejects.toMatchObject({
      code: "STORAGE_NOT_FOUND",
    });
    expect(existsSync(missing)).toBe(false);
    // Without mustExist (the server), the database is created; then it is found.
    const created = await openStorageAdapter({ type: "sqlite", options: { path: missing } }, { registry });
    await created.close();
    expect(existsSync(missing)).toBe(true);
    expect(backendDefinition.findMissing?.(backendDefinition.parseConfig({ path: missing }))).toBeUndefined();
    const reopened = await openStorageAdapter({ type: "sqlite", options: { path: missing } }, { registry, mustExist: true });
    await reopened.close();
  });
});

describe("pragmas reach the database", () => {
  it("applies journal mode, synchronous, cache size and busy timeout on a file", async () => {
    const file = temp.file();
    const backend = SqliteBackend.open({ path: file, synchronous: "FULL", cacheSizeKiB: 50000, busyTimeoutMs: 1234 });
    expect(backend.pragmas()).toEqual({ journalMode: "WAL", synchronous: 2, cacheSize: -50000, busyTimeoutMs: 1234, schemaVersion: 1 });
    await backend.close();
    // WAL is a property of the file: another connection sees it.
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
    raw.close();
  });

  it("uses a rollback journal when asked", async () => {
    const backend = SqliteBackend.open({ path: temp.file(), journalMode: "TRUNCATE", synchronous: "EXTRA" });
    expect(backend.pragmas()).toMatchObject({ journalMode: "TRUNCATE", synchronous: 3 });
    await backend.put("a", Buffer.from("1"));
    expect(await backend.get("a")).toEqual(Buffer.from("1"));
    await backend.close();
  });

  it("keeps an in-memory database in memory", async () => {
    const backend = SqliteBackend.open({ path: ":memory:" });
    expect(backend.pragmas().journalMode).toBe("MEMORY");
    await backend.close();
  });

  it("creates the specification's tables and indexes", async () => {
    const file = temp.file();
    await SqliteBackend.open({ path: file }).close();
    const raw = new Database(file, { readonly: true });
    const names = raw
      .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .pluck()
      .all();
    expect(names).toEqual([
      "egide_audit_log",
      "egide_storage",
      "idx_audit_request",
      "idx_audit_tenant",
      "idx_audit_timestamp",
      "idx_storage_prefix",
    ]);
    const columns = raw.prepare("SELECT name, type, \"notnull\" AS nn FROM pragma_table_info('egide_storage')").all();
    expect(columns).toEqual([
      { name: "key", type: "TEXT", nn: 0 },
      { name: "value", type: "BLOB", nn: 1 },
      { name: "created_at", type: "INTEGER", nn: 1 },
      { name: "updated_at", type: "INTEGER", nn: 1 },
    ]);
    raw.close();
  });

  it("refuses a database written by a newer schema", () => {
    const file = temp.file();
    const raw = new Database(file);
    raw.pragma("user_version = 99");
    raw.close();
    expect(() => SqliteBackend.open({ path: file })).toThrow(/schema version 99 is newer/);
  });

  it("fails clearly when the file cannot be opened", () => {
    expect(() => SqliteBackend.open({ path: "/nonexistent-dir/egide.db" })).toThrow(/sqlite: opening \/nonexistent-dir\/egide.db failed/);
  });
});
