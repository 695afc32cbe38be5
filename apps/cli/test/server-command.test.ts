import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EGIDE_BIN, assertBuildIsFresh, cleanEnv, egide } from "./support/egide-cli.js";

// `egide server`: the same server as `egide-server`, run by the CLI until a signal.

const dir = mkdtempSync(join(tmpdir(), "egide-cli-server-"));
beforeAll(() => assertBuildIsFresh());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `egide server ...args` and waits until its output matches `ready`. */
async function startServerProcess(args: string[], ready: RegExp) {
  const child = spawn(process.execPath, [EGIDE_BIN, "server", ...args], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  for (let i = 0; i < 150 && !ready.test(stdout); i++) {
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!ready.test(stdout)) {
    child.kill("SIGKILL");
    throw new Error(`egide server did not start:\n${stdout}\n${stderr}`);
  }
  return { child, exited, output: () => ({ stdout, stderr }) };
}

describe("egide server", () => {
  test("--dev prints the address, unseal key and root token; the CLI can use it; SIGTERM stops it with exit 0", async () => {
    const server = await startServerProcess(["--dev", "--dev-listen-address", "127.0.0.1:0"], /Root Token: \S+/);
    try {
      const { stdout } = server.output();
      expect(stdout).toContain("WARNING! dev mode is enabled!");
      expect(stdout).toMatch(/Unseal Key: \S{44}\n/);
      const url = /Api Address: (\S+)/.exec(stdout)?.[1] as string;
      const token = /Root Token: (\S+)/.exec(stdout)?.[1] as string;
      const env = { EGIDE_ADDR: url, EGIDE_TOKEN: token };
      expect((await egide(["kv", "put", "secret/dev", "a=b"], { env })).code).toBe(0);
      expect((await egide(["kv", "get", "--field", "a", "secret/dev"], { env })).stdout).toBe("b");
    } finally {
      server.child.kill("SIGTERM");
    }
    expect(await server.exited).toBe(0);
    expect(server.output().stdout).toContain("shutting down");
  });

  test("--config runs a configured server (here uninitialised, so status exits 2); SIGINT stops it", async () => {
    const config = join(dir, "egide.toml");
    writeFileSync(
      config,
      `log_level = "silent"\n[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(join(dir, "egide.db"))}\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`,
    );
    const server = await startServerProcess(["--config", config], /Egide listening on http:\/\/127\.0\.0\.1:\d+ \(storage: sqlite\)/);
    try {
      const url = /Egide listening on (\S+)/.exec(server.output().stdout)?.[1] as string;
      const status = await egide(["status"], { env: { EGIDE_ADDR: url } });
      expect(status.code).toBe(2);
      expect(status.stdout).toMatch(/Initialized\s+false/);
    } finally {
      server.child.kill("SIGINT");
    }
    expect(await server.exited).toBe(0);
  });

  test("bad arguments exit 2; a configuration error exits 1 with one line naming the option", async () => {
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, `[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = "x.db"\n[listener]\naddress = "127.0.0.1:0"\n`);
    const [none, both, address, unknown, config, missing] = await Promise.all([
      egide(["server"]),
      egide(["server", "--dev", "--config", "x.toml"]),
      egide(["server", "--config", "x.toml", "--dev-listen-address", "127.0.0.1:0"]),
      egide(["server", "--port", "1"]),
      egide(["server", "--config", bad]),
      egide(["server", "--config", join(dir, "missing.toml")]),
    ]);
    expect(none).toEqual({ code: 2, stdout: "", stderr: "egide: exactly one of --config FILE or --dev is required\n" });
    expect(both.code).toBe(2);
    expect(address).toEqual({ code: 2, stdout: "", stderr: "egide: --dev-listen-address needs --dev\n" });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--port'");
    expect(config.code).toBe(1);
    expect(config.stderr).toMatch(/^egide: configuration error: listener\.tls_cert_file.*\n$/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^egide: ENOENT/);
  });
});
