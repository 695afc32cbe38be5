import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import pg from "pg";
import { postgresServer } from "./postgres-server.js";
import { freeLoopbackPort } from "@egide/test-network";

/** A PgBouncer started by a test. */
export interface PgBouncer {
  /** Where clients connect (loopback). */
  host: string;
  port: number;
  /**
   * Runs `SHOW <what>` on PgBouncer's admin console (`POOLS`, `STATS`, `DATABASES`, …), so a
   * test can prove its traffic really went through PgBouncer in the expected mode.
   */
  show(what: string): Promise<Record<string, unknown>[]>;
  /** Stops PgBouncer and removes its temporary directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@link startPgBouncer}. */
export interface PgBouncerOptions {
  /** Server connections per database/user pair (default 10). */
  defaultPoolSize?: number;
  /** Client connections accepted in total (default 200). */
  maxClientConn?: number;
  /** How long to wait for PgBouncer to answer a query (default 5000 ms). */
  readyTimeoutMs?: number;
}

const INSTALL_HINT = "install it with `apt-get update && apt-get install -y pgbouncer` (.ci/run does this)";

/** The pgbouncer binary: Debian puts it in /usr/sbin, which is not on every user's PATH. */
function findPgBouncer(): string {
  const candidates = [
    "/usr/sbin/pgbouncer",
    ...(process.env.PATH ?? "")
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, "pgbouncer")),
  ];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new Error(`PgBouncer is required by the PgBouncer tests but /usr/sbin/pgbouncer is missing: ${INSTALL_HINT}.`);
  return found;
}

/**
 * The uid/gid to run PgBouncer as. It refuses to run as root, so under root it runs as the
 * `postgres` OS user that the PostgreSQL package creates; any other user runs it as itself.
 */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

/** Resolves when the child has exited (at once if it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Runs one simple-protocol statement through PgBouncer on `database` and returns its rows. */
async function queryThrough(host: string, port: number, database: string, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({
    host,
    port,
    user: postgresServer.username,
    password: postgresServer.password,
    database,
    connectionTimeoutMillis: 1000,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return (await client.query(text)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Starts PgBouncer in transaction pooling mode on a free loopback port, in front of the test
 * PostgreSQL (trust authentication), with a configuration written to a temporary directory.
 * Resolves once a query goes through it; throws with PgBouncer's own log if it does not.
 */
export async function startPgBouncer(options: PgBouncerOptions = {}): Promise<PgBouncer> {
  const binary = findPgBouncer();
  const user = runAs();
  const host = "127.0.0.1";
  const port = await freeLoopbackPort();
  const dir = mkdtempSync(join(tmpdir(), "egide-pgbouncer-"));
  // PgBouncer writes its log and pid file here as the postgres user.
  if (user) chownSync(dir, user.uid, user.gid);

  const logfile = join(dir, "pgbouncer.log");
  writeFileSync(join(dir, "userlist.txt"), `"${postgresServer.username}" ""\n`);
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      // Every database name maps to the same name on the test server, so each test file's
      // own database is reachable without listing it here.
      `* = host=${postgresServer.host} port=${postgresServer.port}`,
      "",
      "[pgbouncer]",
      `listen_addr = ${host}`,
      `listen_port = ${port}`,
      // No unix socket: it would collide with a system PgBouncer's /var/run/postgresql socket.
      "unix_socket_dir =",
      "auth_type = trust",
      // The admin console (database "pgbouncer") lets tests read SHOW POOLS / SHOW STATS.
      `admin_users = ${postgresServer.username}`,
      `auth_file = ${join(dir, "userlist.txt")}`,
      "pool_mode = transaction",
      // pg sends extra_float_digits; statement_timeout is the backend's startup parameter,
      // which the backend also applies with SET LOCAL inside transactions.
      "ignore_startup_parameters = extra_float_digits,statement_timeout",
      `max_client_conn = ${options.maxClientConn ?? 200}`,
      `default_pool_size = ${options.defaultPoolSize ?? 10}`,
      `logfile = ${logfile}`,
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      "",
    ].join("\n"),
  );

  const child = spawn(binary, [join(dir, "pgbouncer.ini")], { ...user, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  let spawnError: Error | undefined;
  child.once("error", (error) => (spawnError = error));
  // Never leave a PgBouncer behind when the test worker exits without calling stop().
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener("exit", killOnExit);
    // SIGTERM is PgBouncer's immediate shutdown; SIGKILL if it does not go within 5 s.
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited(child);
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 5000);
  for (;;) {
    const gone =
      spawnError ??
      (child.exitCode !== null || child.signalCode !== null ? new Error(`exited with ${child.exitCode ?? child.signalCode}`) : undefined);
    let failure: unknown = gone;
    if (!gone) {
      try {
        // One SELECT 1 proves the whole path: listener, auth, server login.
        await queryThrough(host, port, "postgres", "SELECT 1");
        const show = (what: string) => {
          if (!/^[a-z_]+$/i.test(what)) throw new Error(`not a SHOW target: ${what}`);
          return queryThrough(host, port, "pgbouncer", `SHOW ${what}`);
        };
        return { host, port, show, stop };
      } catch (error) {
        failure = error;
      }
    }
    if (gone || Date.now() > deadline) {
      const log = existsSync(logfile) ? readFileSync(logfile, "utf8").slice(-4000) : "";
      await stop();
      throw new Error(
        `PgBouncer (${binary}) did not accept connections on ${host}:${port}: ${(failure as Error)?.message ?? String(failure)}\n` +
          `stderr:\n${stderr}\nlog:\n${log}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
