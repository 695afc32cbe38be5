import { execFile, execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freeLoopbackPort } from "@egide/test-network";

/** How a cluster is stopped: `fast` (clean), `immediate` (no checkpoint, like a crash of the server). */
export type ClusterStopMode = "smart" | "fast" | "immediate";

/** Options of {@link startThrowawayCluster}. */
export interface ThrowawayClusterOptions {
  /** A loopback port of its own (default: a free one). */
  port?: number;
  /**
   * Make this cluster a streaming replica of `primary` (`pg_basebackup -R`), instead of a new
   * primary (`initdb`).
   */
  replicaOf?: ThrowawayCluster;
  /** Extra `postgresql.conf` lines (for example `synchronous_standby_names = '*'`). */
  settings?: string[];
}

/** A PostgreSQL cluster of a test's own: its own data directory and loopback port, trust auth. */
export interface ThrowawayCluster {
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly dataDir: string;
  /** The superuser to connect as (trust authentication on loopback). */
  readonly username: "postgres";
  /** Starts the server (after a stop) and waits until it accepts connections. */
  start(): void;
  /** Stops it (`immediate` is a crash: no checkpoint, recovery at the next start). */
  stop(mode?: ClusterStopMode): void;
  /** Promotes a replica to a primary and waits until it accepts writes. */
  promote(): void;
  /** Whether the server runs now. */
  running(): boolean;
  /**
   * Runs `pg_ctl -D <dataDir> ...args` without blocking the event loop, for a test whose
   * server under test runs in the same process (its timers and writers must keep running
   * while the cluster stops, starts or is promoted).
   */
  pgCtl(args: readonly string[]): Promise<void>;
  /** Stops it (immediately) and deletes its data directory. Safe to call twice. */
  destroy(): void;
}

const BIN_ROOT = "/usr/lib/postgresql";

/** The directory of the PostgreSQL binaries (`initdb`, `pg_ctl`, `pg_basebackup`), newest version first. */
export function postgresBinDir(): string {
  const fromEnv = process.env.EGIDE_PG_BIN;
  if (fromEnv) return fromEnv;
  const versions = existsSync(BIN_ROOT)
    ? readdirSync(BIN_ROOT)
        .filter((name) => existsSync(join(BIN_ROOT, name, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const version = versions[0];
  if (version === undefined) {
    throw new Error(`no PostgreSQL server binaries under ${BIN_ROOT} (initdb, pg_ctl): install the postgresql package (.ci/run does)`);
  }
  return join(BIN_ROOT, version, "bin");
}

// PostgreSQL refuses to run as root: run its tools as the postgres user when we are root.
function run(command: string, args: string[], options: { allowFailure?: boolean } = {}): { status: number; output: string } {
  const asRoot = process.getuid?.() === 0;
  const [file, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  const result = spawnSync(file, argv, { encoding: "utf8", timeout: 120_000 });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  if (result.status !== 0 && !options.allowFailure) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}): ${output.trim().slice(-2000)}`);
  }
  return { status: result.status ?? -1, output };
}

/**
 * Starts a throwaway PostgreSQL cluster for destructive tests (restarts, crashes, failover,
 * replicas), never touching the machine's shared server: `initdb` (or `pg_basebackup -R` from
 * `replicaOf`) into a temporary directory owned by the postgres user, listening on a loopback port
 * of its own only (no Unix socket), trust authentication, replication allowed. Call `destroy()`
 * at the end.
 */
export async function startThrowawayCluster(options: ThrowawayClusterOptions = {}): Promise<ThrowawayCluster> {
  const bin = postgresBinDir();
  const port = options.port ?? (await freeLoopbackPort());
  const parent = mkdtempSync(join(tmpdir(), "egide-pg-cluster-"));
  const dataDir = join(parent, "data");
  const logFile = join(parent, "server.log");
  if (process.getuid?.() === 0) {
    // The postgres user must own the directory it writes into.
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(parent, uid, gid);
  }
  if (options.replicaOf) {
    const primary = options.replicaOf;
    run(join(bin, "pg_basebackup"), [
      "-h",
      primary.host,
      "-p",
      String(primary.port),
      "-U",
      "postgres",
      "-D",
      dataDir,
      "-R",
      "-X",
      "stream",
      "-c",
      "fast",
    ]);
  } else {
    run(join(bin, "initdb"), ["-D", dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
    writeFileSync(
      join(dataDir, "pg_hba.conf"),
      "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\nlocal all all trust\n",
    );
  }
  const settings = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    "unix_socket_directories = ''",
    "wal_level = replica",
    "max_wal_senders = 5",
    "hot_standby = on",
    "fsync = on",
    "max_connections = 60",
    ...(options.settings ?? []),
  ];
  appendFileSync(join(dataDir, "postgresql.auto.conf"), `\n${settings.join("\n")}\n`);
  if (process.getuid?.() === 0) execFileSync("chown", ["-R", "postgres:postgres", parent]);

  const pgCtl = join(bin, "pg_ctl");
  let destroyed = false;
  const cluster: ThrowawayCluster = {
    host: "127.0.0.1",
    port,
    dataDir,
    username: "postgres",
    start() {
      run(pgCtl, ["-D", dataDir, "-l", logFile, "-w", "-t", "60", "start"]);
    },
    stop(mode = "fast") {
      run(pgCtl, ["-D", dataDir, "-m", mode, "-w", "-t", "60", "stop"], { allowFailure: true });
    },
    promote() {
      run(pgCtl, ["-D", dataDir, "-w", "-t", "60", "promote"]);
    },
    running() {
      return run(pgCtl, ["-D", dataDir, "status"], { allowFailure: true }).status === 0;
    },
    pgCtl(args) {
      const asRoot = process.getuid?.() === 0;
      const [file, argv] = asRoot
        ? ["runuser", ["-u", "postgres", "--", pgCtl, "-D", dataDir, ...args]]
        : [pgCtl, ["-D", dataDir, ...args]];
      return new Promise((resolve, reject) => {
        execFile(file, argv, { timeout: 120_000 }, (error, stdout, stderr) => {
          if (error) reject(new Error(`pg_ctl ${args.join(" ")} failed: ${stdout}${stderr}`, { cause: error }));
          else resolve();
        });
      });
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      if (existsSync(dataDir)) cluster.stop("immediate");
      rmSync(parent, { recursive: true, force: true });
    },
  };
  try {
    cluster.start();
  } catch (error) {
    cluster.destroy();
    throw error;
  }
  return cluster;
}
