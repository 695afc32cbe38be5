import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The built binary the tests run, as users run it. */
export const EGIDE_BIN = fileURLToPath(new URL("../../dist/bin/egide.js", import.meta.url));

/** What one run of the binary did. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link egide}. */
export interface CliRunOptions {
  /** Variables added to the clean environment (no VAULT_* or EGIDE_* of the test process). */
  env?: Record<string, string>;
  /** Written to stdin, which is then closed (stdin is always a closed pipe, never a terminal). */
  input?: string;
  timeoutMs?: number;
}

/** The test process's environment without anything that could point the CLI at a server. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(VAULT|EGIDE)_/.test(name) && name !== "NODE_OPTIONS") env[name] = value;
  }
  return { ...env, ...extra };
}

/** Runs `node dist/bin/egide.js ...args` and collects its exit code and output. */
export function egide(args: readonly string[], options: CliRunOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [EGIDE_BIN, ...args], { env: cleanEnv(options.env), stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(`egide ${args.join(" ")} did not finish within ${options.timeoutMs ?? 20_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`),
      );
    }, options.timeoutMs ?? 20_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

/** The newest modification time of the files below `dir` ending with `extension`. */
function newestMtime(dir: string, extension: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, extension));
    else if (entry.name.endsWith(extension)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Refuses to test a build older than the sources (the tests run dist/, not src/). The build's
 * time is that of tsconfig.tsbuildinfo, which `tsc -b` rewrites whenever it checked changed
 * sources, even when their output is unchanged (so a touched file is fixed by a rebuild).
 */
export function assertBuildIsFresh(): void {
  const src = fileURLToPath(new URL("../../src", import.meta.url));
  const dist = fileURLToPath(new URL("../../dist", import.meta.url));
  const buildInfo = fileURLToPath(new URL("../../tsconfig.tsbuildinfo", import.meta.url));
  let builtAt = 0;
  try {
    if (newestMtime(dist, ".js") === 0) throw new Error("empty");
    builtAt = statSync(buildInfo).mtimeMs;
  } catch {
    throw new Error(`${dist} is missing: build first (cd apps/cli && npx tsc -b)`);
  }
  if (newestMtime(src, ".ts") > builtAt)
    throw new Error("apps/cli/dist is older than apps/cli/src: rebuild first (cd apps/cli && npx tsc -b)");
}
