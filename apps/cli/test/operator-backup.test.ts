import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { summarizeStorage } from "@egide/storage-backup";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import { api, closedPort, startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";
import {
  Workspace,
  backupLayout,
  failure,
  initializeOffline,
  keysInput,
  partialFiles,
  rawRecords,
  seedRawRecords,
  sha256File,
  spawnEgide,
  summarize,
  waitFor,
} from "./support/backup-fixtures.js";

// `egide operator backup` through the real binary: online from a server (and every way that
// fails without leaving a file), offline from a storage configuration, its arguments, and a
// writer killed or terminated mid-backup, which must never leave a partial file under the
// output's name.

let ws: Workspace;
let server: CliTestServer;
beforeAll(async () => {
  assertBuildIsFresh();
  ws = Workspace.create("backup");
  server = await startCliTestServer();
});
afterAll(async () => {
  await server?.close();
  await ws?.cleanup();
});

/** A new empty folder for output files. */
function outputDir(name: string): string {
  const dir = ws.path(name);
  mkdirSync(dir);
  return dir;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("online backup", () => {
  test("streams the server's backup into a file of the requested chunk size, mode 0600; an existing file is refused without --force and replaced with it", async () => {
    const put = await egide(["kv", "put", "secret/app", "password=online"], { env: server.env });
    expect(put.code).toBe(0);
    const dir = outputDir("online");
    const output = join(dir, "egide.enc");
    const run = await egide(["operator", "backup", "--output", output, "--chunk-size", "300"], { env: server.env });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^Success! Backup written to ${escapeRegExp(output)} \\(\\d+\\.\\d KiB, \\d+ entries\\)\\n$`));
    const bytes = readFileSync(output);
    // The entry count the server sent as a trailer is the file's own.
    const entries = Number(/, (\d+) entries\)/.exec(run.stdout)?.[1]);
    expect(entries).toBe((await summarizeStorage(server.server.context.adapter)).records);
    expect(bytes.subarray(0, 8).toString("ascii")).toBe("EGIDEBAK");
    expect(bytes.readUInt32BE(10)).toBe(300);
    expect(bytes.subarray(78, 78 + bytes.readUInt8(77)).toString("utf8")).toBe("sqlite");
    const layout = backupLayout(bytes);
    expect(layout.chunks.length).toBeGreaterThan(3);
    expect(layout.chunks.slice(0, -1).every((chunk) => chunk.end - chunk.start === 316)).toBe(true);
    expect(statSync(output).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["egide.enc"]);

    const before = sha256File(output);
    const again = await egide(["operator", "backup", "--output", output], { env: server.env });
    expect(again).toEqual({ code: 1, stdout: "", stderr: `egide: ${output} already exists (use --force to replace it)\n` });
    expect(sha256File(output)).toBe(before);

    const forced = await egide(["operator", "backup", "--output", output, "--force", "--format", "json"], { env: server.env });
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({
      output,
      bytes: statSync(output).size,
      entries,
      digest: (await summarizeStorage(server.server.context.adapter)).digest,
    });
    // A new file (a new salt) in the default chunk size, nothing left beside it.
    expect(sha256File(output)).not.toBe(before);
    expect(readFileSync(output).readUInt32BE(10)).toBe(1024 * 1024);
    expect(readdirSync(dir)).toEqual(["egide.enc"]);
  });

  test("no server, a wrong token (403) and a sealed server (503) fail with one line and write no file", async () => {
    const dir = outputDir("online-refused");
    const output = join(dir, "egide.enc");
    const port = await closedPort();
    const noServer = await egide(["operator", "backup", "--output", output], {
      env: { EGIDE_ADDR: `http://127.0.0.1:${port}`, EGIDE_TOKEN: server.rootToken },
    });
    expect(failure(noServer)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message: `egide: cannot reach the server at http://127.0.0.1:${port}: connection refused`,
    });

    const wrongToken = await egide(["operator", "backup", "--output", output, "--token", "egs.not-a-real-token"], {
      env: { EGIDE_ADDR: server.url },
    });
    expect(failure(wrongToken)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message: expect.stringMatching(/^egide: permission denied \(403\)/),
    });

    // A token without sudo on sys/storage/backup is refused too.
    const policy = await api(server, "PUT", "sys/policies/acl/reader", { policy: 'path "sys/storage/backup" { capabilities = ["read"] }' });
    expect(policy.status).toBeLessThan(300);
    const created = await api(server, "POST", "auth/token/create", { policies: ["reader"] });
    expect(created.status).toBe(200);
    const noSudo = await egide(["operator", "backup", "--output", output], {
      env: { EGIDE_ADDR: server.url, EGIDE_TOKEN: created.body.auth.client_token },
    });
    expect(failure(noSudo)).toMatchObject({
      code: 1,
      stdout: "",
      lines: 1,
      message: expect.stringMatching(/^egide: permission denied \(403\)/),
    });

    const sealed = await startCliTestServer();
    try {
      expect((await api(sealed, "PUT", "sys/seal")).status).toBeLessThan(300);
      expect((await api(sealed, "GET", "sys/seal-status")).body.sealed).toBe(true);
      const run = await egide(["operator", "backup", "--output", output], { env: sealed.env });
      expect(failure(run)).toEqual({
        code: 1,
        stdout: "",
        lines: 1,
        message: "egide: Egide is sealed (503): unseal it with `egide operator unseal`",
      });
    } finally {
      await sealed.close();
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  test("bad arguments are usage errors (exit 2) and write nothing", async () => {
    const dir = outputDir("bad-arguments");
    const output = join(dir, "egide.enc");
    const noOutput = await egide(["operator", "backup"], { env: server.env });
    expect(noOutput.code).toBe(2);
    expect(noOutput.stdout).toBe("");
    expect(noOutput.stderr).toContain("--output");
    for (const size of ["255", "16777217", "abc", "-1", "1e3"]) {
      const run = await egide(["operator", "backup", "--output", output, "--chunk-size", size], { env: server.env });
      expect(run.code, size).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr, size).toMatch(/--chunk-size/);
    }
    const noConfig = await egide(["operator", "backup", "--output", output, "--config", ws.path("missing.toml")]);
    expect(failure(noConfig)).toMatchObject({
      code: 2,
      stdout: "",
      lines: 1,
      message: expect.stringMatching(/^egide: cannot read the configuration \S+missing\.toml: ENOENT$/),
    });
    expect(readdirSync(dir)).toEqual([]);
    // The smallest chunk size is accepted.
    const smallest = await egide(["operator", "backup", "--output", output, "--chunk-size", "256"], { env: server.env });
    expect(smallest.code).toBe(0);
    expect(readFileSync(output).readUInt32BE(10)).toBe(256);
  });
});

describe("offline backup", () => {
  test("reads the storage directly, unsealed with keys on stdin, and reports the entries and digest of every raw record", async () => {
    const store = ws.sqlite("offline");
    const keys = await initializeOffline(store, { shares: 3, threshold: 2 });
    await seedRawRecords(store, 50, { prefix: "data" });
    const summary = await summarize(store);
    const dir = outputDir("offline");
    const output = join(dir, "offline.enc");
    const run = await egide(["operator", "backup", "--config", store.config, "--output", output, "--format", "json"], {
      input: keysInput(keys),
    });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ output, bytes: statSync(output).size, entries: 53, digest: summary.digest });
    expect(summary.records).toBe(53);
    // A read-only copy: the storage is unchanged.
    expect(await summarize(store)).toEqual(summary);

    // Wrong keys, too few keys, no installation: one line, no file.
    const other = ws.sqlite("offline-other");
    const otherKeys = await initializeOffline(other, { shares: 3, threshold: 2 });
    const refused = join(dir, "refused.enc");
    const wrong = await egide(["operator", "backup", "--config", store.config, "--output", refused], { input: keysInput(otherKeys) });
    expect(failure(wrong)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message: "egide: cannot unseal the installation: unseal failed: the shares do not open this installation",
    });
    const tooFew = await egide(["operator", "backup", "--config", store.config, "--output", refused], { input: keysInput(keys, 1) });
    expect(failure(tooFew)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message: "egide: the installation needs 2 unseal key(s) on standard input, one per line; 1 given",
    });
    const blank = ws.sqlite("offline-blank");
    const none = await egide(["operator", "backup", "--config", blank.config, "--output", refused], { input: keysInput(keys) });
    expect(failure(none)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message: `egide: the storage of ${blank.config} does not exist: there is no SQLite database at ${blank.sqlitePath}`,
    });
    expect(readdirSync(dir)).toEqual(["offline.enc"]);
  });

  test("the configuration's unseal_key_env / unseal_key_file unseal it without stdin (backup with one, restore with the other)", async () => {
    const source = ws.sqlite("auto_env", `[seal]\nunseal_key_env = "EGIDE_TEST_UNSEAL_KEY"\n`);
    const [key] = await initializeOffline(source);
    const keyFile = ws.path("unseal.key");
    writeFileSync(keyFile, `${key}\n`);
    chmodSync(keyFile, 0o600);
    const output = join(outputDir("auto"), "auto.enc");
    const backup = await egide(["operator", "backup", "--config", source.config, "--output", output], {
      env: { EGIDE_TEST_UNSEAL_KEY: key as string },
    });
    expect(failure(backup)).toMatchObject({ code: 0, lines: 0 });
    expect(backup.stdout).toContain(", 3 entries)");
    const target = ws.sqlite("auto_target", `[seal]\nunseal_key_file = ${JSON.stringify(keyFile)}\n`);
    const restore = await egide(["operator", "restore", "--input", output, "--config", target.config]);
    expect(failure(restore)).toMatchObject({ code: 0, lines: 0 });
    expect(restore.stdout).toContain("Success! Restored 3 entries");
    expect([...(await rawRecords(target)).keys()]).toEqual([...(await rawRecords(source)).keys()]);
  });
});

test("an offline backup of a configuration whose SQLite database does not exist is refused without creating a database file there", async () => {
  const missing = ws.sqlite("mistyped");
  const output = join(outputDir("mistyped"), "x.enc");
  const run = await egide(["operator", "backup", "--config", missing.config, "--output", output], { input: "AAAA\n" });
  expect(failure(run)).toEqual({
    code: 1,
    stdout: "",
    lines: 1,
    message: `egide: the storage of ${missing.config} does not exist: there is no SQLite database at ${missing.sqlitePath}`,
  });
  expect(existsSync(output)).toBe(false);
  // An offline backup never writes the storage it copies: no database is created there.
  expect(existsSync(missing.sqlitePath as string)).toBe(false);
});

describe("a backup killed midway leaves no output file", () => {
  let big: ReturnType<Workspace["sqlite"]>;
  let key: string;
  beforeAll(async () => {
    big = ws.sqlite("big");
    [key] = (await initializeOffline(big)) as [string];
    await seedRawRecords(big, 20_000, { prefix: "bulk", valueBytes: 200 });
  });

  /** Starts an offline backup of the big store in small chunks (so it takes a moment) and waits for its temporary file to grow. */
  async function startBackup(output: string) {
    const dir = join(output, "..");
    const name = output.slice(dir.length + 1);
    const run = spawnEgide(["operator", "backup", "--config", big.config, "--output", output, "--chunk-size", "256"], {
      input: `${key}\n`,
    });
    let ended = false;
    void run.exited.then(() => (ended = true));
    await waitFor(
      () => partialFiles(dir, name).some((file) => (statSync(join(dir, file), { throwIfNoEntry: false })?.size ?? 0) > 0),
      "the backup's temporary file",
      { stop: () => ended },
    );
    const [partial] = partialFiles(dir, name);
    expect(partial).toMatch(new RegExp(`^\\.${escapeRegExp(name)}\\.partial-${run.child.pid}-[0-9a-f]{8}$`));
    return { ...run, partial: partial as string, dir, name };
  }

  test("SIGKILL: no output file; the next backup succeeds and removes the stale temporary file", async () => {
    const dir = outputDir("killed");
    const output = join(dir, "big.enc");
    const { child, exited, partial } = await startBackup(output);
    child.kill("SIGKILL");
    const killed = await exited;
    expect(killed.signal).toBe("SIGKILL");
    expect(existsSync(output)).toBe(false);
    // Killed outright, it could not clean up: its hidden temporary file is all that is left.
    expect(readdirSync(dir)).toEqual([partial]);
    expect(statSync(join(dir, partial)).size).toBeLessThan(statSync(big.sqlitePath as string).size);

    const again = await egide(["operator", "backup", "--config", big.config, "--output", output], { input: `${key}\n`, timeoutMs: 60_000 });
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(", 20003 entries)");
    expect(readdirSync(dir)).toEqual(["big.enc"]);
    expect(backupLayout(readFileSync(output)).contentBytes).toBeGreaterThan(20_000 * 200);
  });

  test("SIGTERM: the backup removes its temporary file and exits 143; no output file", async () => {
    const dir = outputDir("terminated");
    const output = join(dir, "big.enc");
    const { child, exited } = await startBackup(output);
    child.kill("SIGTERM");
    const terminated = await exited;
    expect(terminated.code).toBe(143);
    expect(terminated.stdout).toBe("");
    expect(readdirSync(dir)).toEqual([]);
  });
});
