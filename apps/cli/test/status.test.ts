import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import { closedPort, startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";

// `egide status` and the program's own help and version.

let server: CliTestServer;
beforeAll(async () => {
  assertBuildIsFresh();
  server = await startCliTestServer();
});
afterAll(() => server?.close());

describe.concurrent("egide status", () => {
  test("an unsealed server: a table of its seal status and storage health, exit 0; no token needed", async () => {
    const run = await egide(["status"], { env: { EGIDE_ADDR: server.url } });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Key\s+Value\n---\s+-----\n/);
    expect(run.stdout).toMatch(/Initialized\s+true/);
    expect(run.stdout).toMatch(/Sealed\s+false/);
    expect(run.stdout).toMatch(/Storage Type\s+sqlite/);
    expect(run.stdout).toMatch(/Storage Health\s+healthy/);
  });

  test("--format json: the seal status with the health body, exit 0", async () => {
    const run = await egide(["status", "--format", "json"], { env: { EGIDE_ADDR: server.url } });
    expect(run.code).toBe(0);
    const body = JSON.parse(run.stdout);
    expect(body).toMatchObject({ initialized: true, sealed: false, t: 1, n: 1, storage_type: "sqlite" });
    expect(body.health).toMatchObject({ initialized: true, sealed: false, storage: { type: "sqlite", status: "healthy" } });
  });

  test("a sealed server exits 2 and says Sealed true with the unseal progress; an uninitialised one exits 2 too", async () => {
    const sealed = await startCliTestServer({ scheme: { shares: 3, threshold: 2 } });
    const fresh = await startCliTestServer({ uninitialized: true });
    try {
      sealed.server.context.seal.seal();
      const run = await egide(["status"], { env: { EGIDE_ADDR: sealed.url } });
      expect(run.code).toBe(2);
      expect(run.stdout).toMatch(/Sealed\s+true/);
      expect(run.stdout).toMatch(/Unseal Progress\s+0\/2/);
      expect(run.stdout).toMatch(/Total Shares\s+3/);
      expect(run.stderr).toBe("");
      const json = await egide(["status", "--format=json"], { env: { EGIDE_ADDR: sealed.url } });
      expect(json.code).toBe(2);
      expect(JSON.parse(json.stdout)).toMatchObject({ sealed: true, t: 2, n: 3 });
      const uninitialised = await egide(["status"], { env: { EGIDE_ADDR: fresh.url } });
      expect(uninitialised.code).toBe(2);
      expect(uninitialised.stdout).toMatch(/Initialized\s+false/);
    } finally {
      await sealed.close();
      await fresh.close();
    }
  });

  test("no server: exit 1 and one line naming the address and the reason", async () => {
    const port = await closedPort();
    const run = await egide(["status", "--address", `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(`egide: cannot reach the server at http://127.0.0.1:${port}: connection refused\n`);
  });

  test("bad arguments exit 2 with commander's message on one line", async () => {
    const [extra, format, unknown] = await Promise.all([
      egide(["status", "extra"], { env: { EGIDE_ADDR: server.url } }),
      egide(["status", "--format", "yaml"], { env: { EGIDE_ADDR: server.url } }),
      egide(["bogus"]),
    ]);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/^egide: too many arguments.*\(see 'egide status --help'\)\n$/);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain("Allowed choices are human, table, json");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'bogus'");
  });
});

describe.concurrent("egide itself", () => {
  test("--help lists every command and exits 0; a group without a subcommand is a usage error", async () => {
    const help = await egide(["--help"]);
    expect(help.code).toBe(0);
    for (const command of ["server", "status", "operator", "kv", "token", "policy", "audit"])
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, "m"));
    const kvHelp = await egide(["kv", "get", "--help"]);
    expect(kvHelp.code).toBe(0);
    expect(kvHelp.stdout).toContain("--version <n>");
    expect(kvHelp.stdout).toContain("--field <name>");
    const group = await egide(["operator"]);
    expect(group.code).toBe(2);
    expect(group.stderr).toContain("Usage: egide operator");
  });

  test("--version prints the package version; Vault's single-dash -version works too", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    for (const run of await Promise.all(["--version", "-V", "-version"].map((flag) => egide([flag])))) {
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(`${version}\n`);
    }
  });
});
