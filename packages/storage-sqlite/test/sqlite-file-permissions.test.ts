import { spawn } from "node:child_process";
import { chmodSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { StorageError } from "@egide/storage-core";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { SqliteBackend, SqliteFilePermissionError } from "../src/index.js";
import { tempDirectory } from "./temp-database.js";

// chmodSync as the backend sees it: the real one, unless a test makes it fail the way it does
// for a process that does not own the file (the tests run as root, where it never fails).
vi.mock("node:fs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs")>();
  return { ...actual, chmodSync: vi.fn(actual.chmodSync) };
});

const OPEN_WRITER = fileURLToPath(new URL("./fixtures/open-writer.mjs", import.meta.url));

const temp = tempDirectory("sqlite-permissions");
let previousUmask: number;
// The usual umask, under which SQLite on its own creates files 0644.
beforeAll(() => (previousUmask = process.umask(0o022)));
afterAll(() => {
  process.umask(previousUmask);
  temp.remove();
});
const actualFs = await vi.importActual<typeof import("node:fs")>("node:fs");
afterEach(() => vi.mocked(chmodSync).mockReset().mockImplementation(actualFs.chmodSync));

/** The permission bits of `path`, e.g. 0o600. */
function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

/** An `fs` error as chmod raises it for a file the process does not own. */
function notOwner(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EPERM: operation not permitted, chmod '${path}'`), { code: "EPERM", syscall: "chmod", path });
}

describe("a new database file", () => {
  it("is created 0600, and its WAL and WAL index follow, whatever the umask grants", async () => {
    const file = temp.file();
    const backend = SqliteBackend.open({ path: file });
    await backend.put("secret/app", Buffer.from("value"));
    await backend.audit.append({ operation: "write", path: "secret/app", success: true });
    expect(existsSync(`${file}-wal`)).toBe(true);
    expect(existsSync(`${file}-shm`)).toBe(true);
    expect([modeOf(file), modeOf(`${file}-wal`), modeOf(`${file}-shm`)]).toEqual([0o600, 0o600, 0o600]);
    await backend.close();
    expect(modeOf(file)).toBe(0o600);
  });

  it("gets a rollback journal that is 0600 too", async () => {
    // PERSIST keeps the journal file after each commit, so it can be looked at.
    const file = temp.file();
    const backend = SqliteBackend.open({ path: file, journalMode: "PERSIST" });
    await backend.put("k", Buffer.from("v"));
    expect(existsSync(`${file}-journal`)).toBe(true);
    expect([modeOf(file), modeOf(`${file}-journal`)]).toEqual([0o600, 0o600]);
    await backend.close();
  });

  it("is exactly 0600 even under a umask that would take the owner's write permission", async () => {
    const file = temp.file();
    const outer = process.umask(0o277);
    let backend: SqliteBackend;
    try {
      backend = SqliteBackend.open({ path: file });
    } finally {
      process.umask(outer);
    }
    await backend.put("k", Buffer.from("v"));
    expect([modeOf(file), modeOf(`${file}-wal`), modeOf(`${file}-shm`)]).toEqual([0o600, 0o600, 0o600]);
    await backend.close();
  });

  it("is private when several processes create it at the same moment, and every one of them works", async () => {
    const file = temp.file();
    const names = ["a", "b", "c", "d"];
    // Far enough ahead for every process to have started and loaded better-sqlite3.
    const startAt = Date.now() + 1500;
    const reports = await Promise.all(names.map((name) => runOpenWriter(file, startAt, name)));
    expect(reports.map((report) => report.name).sort()).toEqual(names);
    for (const report of reports) expect(report).toMatchObject({ db: "600", wal: "600", shm: "600" });
    expect(modeOf(file)).toBe(0o600);
    const backend = SqliteBackend.open({ path: file });
    expect(await backend.list("writer/")).toEqual(names);
    await backend.close();
  });

  it("is not created in a missing directory, which is not created either, and the error says so", () => {
    const directory = join(temp.dir, "missing");
    const failure = (() => {
      try {
        SqliteBackend.open({ path: join(directory, "egide.db") });
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    // Before, better-sqlite3's own check made this an INTERNAL error.
    expect(StorageError.isInstance(failure, "UNAVAILABLE")).toBe(true);
    expect((failure as StorageError).retryable).toBe(false);
    expect((failure as Error).message).toBe(
      `sqlite: opening ${directory}/egide.db failed: directory ${directory} does not exist; create it, readable by Egide's user only (mode 0700)`,
    );
    expect(existsSync(directory)).toBe(false);
  });
});

describe("an existing database file", () => {
  it.each([
    ["0644", 0o644],
    ["0666", 0o666],
    ["0640", 0o640],
    ["0604", 0o604],
  ])("loses its group and other permissions (mode %s becomes 0600)", async (_label, mode) => {
    const file = temp.file();
    await SqliteBackend.open({ path: file }).close();
    chmodSync(file, mode);
    const backend = SqliteBackend.open({ path: file });
    expect(modeOf(file)).toBe(0o600);
    await backend.close();
  });

  it("has its WAL and WAL index tightened as well, while another connection uses them", async () => {
    // An older build (or sqlite3 on the command line) made these files with the umask.
    const file = temp.file();
    const other = new Database(file);
    other.pragma("journal_mode = WAL");
    other.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    for (const path of [file, `${file}-wal`, `${file}-shm`]) chmodSync(path, 0o644);

    const backend = SqliteBackend.open({ path: file });
    expect([modeOf(file), modeOf(`${file}-wal`), modeOf(`${file}-shm`)]).toEqual([0o600, 0o600, 0o600]);
    await backend.put("k", Buffer.from("v"));
    other.exec("INSERT INTO t VALUES (2)");
    expect(other.prepare("SELECT count(*) FROM t").pluck().get()).toBe(2);
    expect(await backend.get("k")).toEqual(Buffer.from("v"));
    other.close();
    await backend.close();
  });

  it("is refused, untouched, when its permissions cannot be narrowed; a private one opens all the same", async () => {
    const file = temp.file();
    await SqliteBackend.open({ path: file }).close();
    chmodSync(file, 0o644);
    vi.mocked(chmodSync).mockImplementation((path) => {
      throw notOwner(String(path));
    });

    const failure = (() => {
      try {
        SqliteBackend.open({ path: file });
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(failure).toBeInstanceOf(SqliteFilePermissionError);
    expect(failure).toMatchObject({ code: "UNAVAILABLE", retryable: false, backend: "sqlite", path: file, mode: 0o644 });
    expect((failure as Error).message).toBe(
      `sqlite: ${file} is accessible by group or others (mode 0644) and could not be restricted to its owner (EPERM); ` +
        `run "chmod go= ${file}" as the file's owner, or make the user Egide runs as its owner`,
    );
    // SQLite never opened it.
    expect(existsSync(`${file}-wal`)).toBe(false);

    // A file that is private already needs no chmod, so not owning it is no obstacle.
    expect(modeOf(file)).toBe(0o644);
    actualFs.chmodSync(file, 0o600);
    vi.mocked(chmodSync).mockClear();
    const backend = SqliteBackend.open({ path: file });
    await backend.put("k", Buffer.from("v"));
    expect(chmodSync).not.toHaveBeenCalled();
    await backend.close();
  });

  it("is refused when its WAL cannot be narrowed", async () => {
    const file = temp.file();
    const other = new Database(file);
    other.pragma("journal_mode = WAL");
    other.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    chmodSync(file, 0o600);
    chmodSync(`${file}-shm`, 0o600);
    chmodSync(`${file}-wal`, 0o644);
    vi.mocked(chmodSync).mockImplementation((path) => {
      throw notOwner(String(path));
    });
    expect(() => SqliteBackend.open({ path: file })).toThrow(SqliteFilePermissionError);
    expect(() => SqliteBackend.open({ path: file })).toThrow(`${file}-wal is accessible by group or others (mode 0644)`);
    other.close();
  });
});

describe("an online backup", () => {
  it("is readable by its owner only", async () => {
    const backend = SqliteBackend.open({ path: temp.file() });
    await backend.put("k", Buffer.from("v"));
    const destination = temp.file("backup.sqlite");
    await backend.backup(destination);
    expect(modeOf(destination)).toBe(0o600);
    await backend.close();
    const copy = SqliteBackend.open({ path: destination });
    expect(await copy.get("k")).toEqual(Buffer.from("v"));
    await copy.close();
  });
});

/** Runs test/fixtures/open-writer.mjs and returns the modes it reports. */
function runOpenWriter(file: string, startAt: number, name: string): Promise<{ name: string; db: string; wal: string; shm: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OPEN_WRITER, file, String(startAt), name], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const watchdog = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(watchdog);
      if (code === 0) resolve(JSON.parse(stdout));
      else reject(new Error(`open-writer ${name} ended with ${signal ?? code}: ${stderr}`));
    });
  });
}
