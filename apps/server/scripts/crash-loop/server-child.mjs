import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { vaultRequest } from "./vault-request.mjs";

/** The built server binary (`npx tsc -b` in apps/server). */
export const SERVER_BIN = fileURLToPath(new URL("../../dist/bin/egide-server.js", import.meta.url));

/** How much of a child's output is kept for error messages. */
const OUTPUT_TAIL = 20_000;

/**
 * Starts `dist/bin/egide-server.js --config <configPath>` as a child process, as an operator's
 * service manager would (the same way as test/support/server-process.ts, which is TypeScript and
 * SQLite-only, so this script cannot import it), and waits for its "Egide listening on" line.
 *
 * @param {string} configPath
 * @param {{ startTimeoutMs?: number }} [options]
 * @returns {Promise<{ url: string, pid: number, output(): string, exited: Promise<void>, kill(signal?: NodeJS.Signals): Promise<void> }>}
 */
export async function startServerChild(configPath, options = {}) {
  if (!existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: build the server first (cd apps/server && npx tsc -b)`);
  const child = spawn(process.execPath, [SERVER_BIN, "--config", configPath], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (chunk) => {
    out += chunk.toString("utf8");
    if (out.length > OUTPUT_TAIL * 2) out = out.slice(-OUTPUT_TAIL);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", () => resolve()));
  const kill = async (signal = "SIGKILL") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  try {
    const url = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the server did not start within ${options.startTimeoutMs ?? 30_000} ms:\n${out}`)),
        options.startTimeoutMs ?? 30_000,
      );
      child.stdout.on("data", () => {
        const match = /Egide listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code ?? signal}) before listening:\n${out}`));
      });
    });
    return { url, pid: child.pid, output: () => out.slice(-OUTPUT_TAIL), exited, kill };
  } catch (error) {
    await kill();
    throw error;
  }
}

/**
 * Polls `GET /v1/sys/health` until it answers `expected` (200: initialised, unsealed, storage
 * healthy; 501: not initialised yet).
 *
 * @param {string} url
 * @param {number} expected
 * @param {number} [timeoutMs]
 */
export async function waitForHealth(url, expected, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const health = await vaultRequest(url, "GET", "/v1/sys/health", { timeoutMs: 2_000 });
      if (health.status === expected) return health.body;
      last = `${health.status} ${JSON.stringify(health.body)}`;
    } catch (error) {
      last = error?.message ?? String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`GET /v1/sys/health did not answer ${expected} within ${timeoutMs} ms (last: ${last})`);
}
