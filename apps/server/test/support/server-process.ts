import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../dist/bin/egide-server.js", import.meta.url));

/** The built server running as a child process over a temporary SQLite file, its output captured. */
export interface ServerProcess {
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Stops it (SIGTERM, waiting for the exit) and removes its files. */
  stop(): Promise<void>;
}

/**
 * Starts `dist/bin/egide-server.js` with `log_level` (uninitialised, on 127.0.0.1:0), for tests
 * that read what the server logs. The server must have been built (`npx tsc -b`).
 */
export async function startServerProcess(label: string, logLevel = "info"): Promise<ServerProcess> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build the server first (cd apps/server && npx tsc -b)`);
  const dir = mkdtempSync(join(tmpdir(), `egide-${label}-`));
  const configPath = join(dir, "egide.toml");
  writeFileSync(
    configPath,
    `log_level = ${JSON.stringify(logLevel)}\n[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(join(dir, "egide.db"))}\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`,
  );
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [BIN, "--config", configPath], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start:\n${out}`)), 20_000);
      child.stdout.on("data", () => {
        const match = /Egide listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(match[1] as string);
        }
      });
      child.once("exit", (code) => reject(new Error(`the server exited (${code}):\n${out}`)));
    });
    return { url, output: () => out, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
