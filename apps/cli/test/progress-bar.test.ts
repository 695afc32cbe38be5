import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";
import { EGIDE_BIN, cleanEnv, egide } from "./support/egide-cli.js";

// Long commands draw a progress bar (cli-progress) on stderr when it is a terminal, and stay
// quiet otherwise (scripts, logs).

let server: CliTestServer;
beforeAll(async () => {
  server = await startCliTestServer();
  for (let i = 0; i < 20; i++) await egide(["kv", "put", `secret/app/${i}`, `v=${i}`], { env: server.env });
});
afterAll(() => server?.close());

/** Runs the CLI on a pseudo-terminal (script(1)) and returns everything it drew, and its exit code. */
function onTerminal(args: string[]): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, EGIDE_BIN, ...args].map((part) => JSON.stringify(part)).join(" ");
  const child = spawn("script", ["-qec", command, "/dev/null"], { env: cleanEnv(server.env), stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output })));
}

test("a backup and a restore on a terminal show their progress (bytes, and the upload)", async () => {
  const file = join(server.dir, "bar.enc");
  const backup = await onTerminal(["operator", "backup", "--output", file]);
  expect(backup.code, backup.output).toBe(0);
  expect(backup.output).toMatch(/Backing up \| \d+(\.\d)? (B|KiB)/);
  // The bar itself counts bytes only (the entry count arrives with the last byte, in the result line).
  expect(backup.output).not.toMatch(/Backing up \|[^\n\r]*entries/);
  expect(backup.output).toMatch(/Success! Backup written to .*bar\.enc \(\d+(\.\d)? (B|KiB), \d+ entries\)/);
  expect(existsSync(file)).toBe(true);
  const restore = await onTerminal(["operator", "restore", "--input", file, "--force"]);
  expect(restore.code, restore.output).toBe(0);
  expect(restore.output).toMatch(/Uploading \[[^\]]*\] 100%/);
});

test("without a terminal the same commands print only their result", async () => {
  for (const key of server.keys) await egide(["operator", "unseal", key], { env: server.env });
  const file = join(server.dir, "quiet.enc");
  const backup = await egide(["operator", "backup", "--output", file], { env: server.env });
  expect(backup.code).toBe(0);
  expect(backup.stderr).toBe("");
  expect(backup.stdout).toMatch(/^Success! Backup written to .*quiet\.enc \(/);
});
