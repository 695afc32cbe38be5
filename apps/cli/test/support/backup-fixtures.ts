import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { SealManager } from "@egide/crypto-envelope";
import { SHIPPED_STORAGE_PACKAGES, parseServerConfig, startServer } from "@egide/server";
import type { RunningServer } from "@egide/server";
import { summarizeStorage } from "@egide/storage-backup";
import type { RecordSummary } from "@egide/storage-backup";
import { openStorageAdapter, putEntries } from "@egide/storage-core";
import type { AuditingBackend, ScanEntry } from "@egide/storage-core";
import { createTestDatabase, postgresServer } from "@egide/test-postgres";
import type { TestDatabase } from "@egide/test-postgres";
import { EGIDE_BIN, cleanEnv, egide } from "./egide-cli.js";
import type { CliRun } from "./egide-cli.js";

// Support for the backup, restore and migrate tests: storages described by real server
// configuration files (SQLite files in a temp folder, PostgreSQL databases created for the test
// file), servers started on them, their raw records and files fingerprinted, and backup files
// taken apart so they can be damaged in precise places.

/** A storage as the CLI sees it: a server configuration file naming it. */
export interface Store {
  kind: "sqlite" | "postgresql" | "etcd";
  /** The TOML configuration file (a complete server configuration). */
  config: string;
  /** The SQLite database file. */
  sqlitePath?: string;
  /** The PostgreSQL database. */
  database?: TestDatabase;
}

/** A server started on a {@link Store}. */
export interface StartedServer {
  server: RunningServer;
  url: string;
  close(): Promise<void>;
}

/** The unseal keys and root token of an initialised installation. */
export interface Installation {
  /** Base64 unseal key shares. */
  keys: string[];
  rootToken: string;
}

/** Where adapters are resolved from: the CLI package's node_modules (as the `egide` command does). */
const HERE = dirname(fileURLToPath(import.meta.url));

const LISTENER = `[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`;

/**
 * A temp folder and the PostgreSQL databases of one test file; {@link cleanup} stops the servers
 * it started, drops the databases and removes the folder.
 */
export class Workspace {
  readonly dir: string;
  readonly #label: string;
  readonly #databases: TestDatabase[] = [];
  readonly #servers: StartedServer[] = [];
  #counter = 0;

  private constructor(label: string) {
    this.#label = label;
    this.dir = mkdtempSync(join(tmpdir(), `egide-cli-${label}-`));
  }

  static create(label: string): Workspace {
    return new Workspace(label);
  }

  /** A path in the folder, unique per call. */
  path(name: string): string {
    return join(this.dir, `${++this.#counter}-${name}`);
  }

  /** A new (not yet existing) SQLite store; `extraToml` is appended to its configuration (a `[seal]` table). */
  sqlite(name = "store", extraToml = ""): Store {
    const sqlitePath = this.path(`${name}.db`);
    const config = this.path(`${name}.toml`);
    writeFileSync(
      config,
      `log_level = "silent"\n[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(sqlitePath)}\n${LISTENER}${extraToml}`,
    );
    return { kind: "sqlite", config, sqlitePath };
  }

  /** A new, empty PostgreSQL database (dropped by cleanup) and its store. */
  async postgres(name = "store"): Promise<Store> {
    const database = await createTestDatabase(`${this.#label}_${name}`);
    this.#databases.push(database);
    const { host, port, username } = database.connection;
    const config = this.path(`${name}.toml`);
    writeFileSync(
      config,
      `log_level = "silent"\n[storage]\ntype = "postgresql"\n[storage.postgresql]\nhost = ${JSON.stringify(host)}\nport = ${port}\nusername = ${JSON.stringify(username)}\n` +
        `database = ${JSON.stringify(database.name)}\npool_min = 0\npool_max = 4\n${LISTENER}`,
    );
    return { kind: "postgresql", config, database };
  }

  /**
   * A new, empty etcd store: its own key prefix on the cluster at `endpoints` (the cluster is
   * the caller's, started with `@egide/test-etcd` and closed by it). The server and the CLI find
   * `@egide/storage-etcd` by the package convention: nothing in them names etcd.
   */
  etcd(endpoints: readonly string[], name = "store"): Store {
    const config = this.path(`${name}.toml`);
    const prefix = `egide-${this.#label}-${name}-${++this.#counter}/`;
    writeFileSync(
      config,
      `log_level = "silent"\n[storage]\ntype = "etcd"\n[storage.etcd]\nendpoints = ${JSON.stringify(endpoints)}\nprefix = ${JSON.stringify(prefix)}\n${LISTENER}`,
    );
    return { kind: "etcd", config };
  }

  /** A new store of `kind` (SQLite or PostgreSQL). */
  async store(kind: "sqlite" | "postgresql", name = "store"): Promise<Store> {
    return kind === "sqlite" ? this.sqlite(name) : this.postgres(name);
  }

  /** Starts a real server (in this process) on `store`'s configuration. */
  async startServer(store: Store): Promise<StartedServer> {
    // Adapters resolve from the CLI's folder, as the `egide` command's own would.
    const server = await startServer({ config: parseServerConfig(readFileSync(store.config, "utf8")), resolveFrom: HERE });
    let closed: Promise<void> | undefined;
    const started: StartedServer = {
      server,
      url: server.url,
      close: () => (closed ??= server.close()),
    };
    this.#servers.push(started);
    return started;
  }

  async cleanup(): Promise<void> {
    for (const server of this.#servers.splice(0)) await server.close().catch(() => undefined);
    try {
      for (const database of this.#databases.splice(0)) await database.drop();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Initialises a running server in-process (3 shares, threshold 2 unless told) and unseals it. */
export async function initialize(started: StartedServer, scheme = { shares: 3, threshold: 2 }): Promise<Installation> {
  const result = await started.server.initialize(scheme, true);
  return { keys: result.keys.map((key) => key.toString("base64")), rootToken: result.rootToken };
}

/** Unseals a server through its API with `keys` (the shares after the threshold are not sent). */
export async function unsealThroughApi(url: string, keys: readonly string[]): Promise<{ sealed: boolean }> {
  let body: { sealed: boolean } = { sealed: true };
  for (const key of keys) {
    const response = await fetch(`${url}/v1/sys/unseal`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key }),
    });
    if (response.status !== 200) throw new Error(`unseal answered ${response.status}: ${await response.text()}`);
    body = (await response.json()) as { sealed: boolean };
    if (!body.sealed) break;
  }
  return body;
}

/** The CLI environment for a server and token. */
export function serverEnv(url: string, token: string): Record<string, string> {
  return { EGIDE_ADDR: url, EGIDE_TOKEN: token };
}

/** Stdin for the offline commands: the first `threshold` keys, one per line. */
export function keysInput(keys: readonly string[], threshold = 2): string {
  return `${keys.slice(0, threshold).join("\n")}\n`;
}

/** `egide kv put PATH k=v …`, which must succeed. */
export async function kvPut(env: Record<string, string>, path: string, data: Record<string, string>): Promise<void> {
  const run = await egide(["kv", "put", path, ...Object.entries(data).map(([k, v]) => `${k}=${v}`)], { env });
  if (run.code !== 0) throw new Error(`kv put ${path} exited ${run.code}: ${run.stderr}`);
}

/** `egide kv get --format json PATH`: the secret's data, or null when it has none (exit 2). */
export async function kvGet(env: Record<string, string>, path: string): Promise<Record<string, string> | null> {
  const run = await egide(["kv", "get", "--format", "json", path], { env });
  if (run.code === 2) return null;
  if (run.code !== 0) throw new Error(`kv get ${path} exited ${run.code}: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { data: { data: Record<string, string> } }).data.data;
}

/** Reads every path of `secrets` back with `egide kv get` (two at a time) and returns what it got. */
export async function kvGetAll(
  env: Record<string, string>,
  paths: readonly string[],
): Promise<Record<string, Record<string, string> | null>> {
  const out: Record<string, Record<string, string> | null> = {};
  for (let i = 0; i < paths.length; i += 2) {
    const batch = paths.slice(i, i + 2);
    const values = await Promise.all(batch.map((path) => kvGet(env, path)));
    for (const [j, path] of batch.entries()) {
      out[path] = values[j] ?? null;
    }
  }
  return out;
}

/** Opens `store`'s raw adapter as the CLI does (from its configuration file). */
export async function openRaw(store: Store): Promise<AuditingBackend> {
  const config = parseServerConfig(readFileSync(store.config, "utf8"));
  return openStorageAdapter(config.storage, {
    env: {},
    packages: SHIPPED_STORAGE_PACKAGES,
    resolveFrom: HERE,
  });
}

/** The count and digest of every raw record of `store` (opened and closed here). */
export async function summarize(store: Store): Promise<RecordSummary> {
  const raw = await openRaw(store);
  try {
    return await summarizeStorage(raw);
  } finally {
    await raw.close();
  }
}

/** Every raw record of `store`, key → hex value. */
export async function rawRecords(store: Store): Promise<Map<string, string>> {
  const raw = await openRaw(store);
  try {
    const out = new Map<string, string>();
    for await (const { key, value } of raw.scan("")) out.set(key, value.toString("hex"));
    return out;
  } finally {
    await raw.close();
  }
}

/** SHA-256 of a file's bytes. */
export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** SHA-256 of a SQLite store's database file and its write-ahead log (when one is left). */
export function sqliteFilesSha(store: Store): string {
  const path = store.sqlitePath as string;
  const hash = createHash("sha256").update(readFileSync(path));
  if (existsSync(`${path}-wal`)) hash.update("wal").update(readFileSync(`${path}-wal`));
  return hash.digest("hex");
}

/** What a store holds, to show that a refused command changed nothing. */
export interface StoreFingerprint extends RecordSummary {
  /** For SQLite: the SHA-256 of the database files, taken before the store is opened here. */
  fileSha256?: string;
}

/**
 * The store's fingerprint: for SQLite the files' SHA-256 first (as the CLI left them), then the
 * raw records' count and digest through an adapter opened and closed here.
 */
export async function fingerprint(store: Store): Promise<StoreFingerprint> {
  const fileSha256 = store.kind === "sqlite" ? sqliteFilesSha(store) : undefined;
  const summary = await summarize(store);
  return fileSha256 === undefined ? summary : { ...summary, fileSha256 };
}

/** Initialises an installation directly on `store`'s raw adapter (no server); returns its keys. */
export async function initializeOffline(store: Store, scheme = { shares: 1, threshold: 1 }): Promise<string[]> {
  const raw = await openRaw(store);
  try {
    const seal = await SealManager.open(raw);
    const { shares } = await seal.initialize(scheme);
    seal.seal();
    return shares.map((share) => Buffer.from(share).toString("base64"));
  } finally {
    await raw.close();
  }
}

/** The key of seeded record `i` (spread over folders like real paths). */
export function seededKey(prefix: string, i: number): string {
  return `${prefix}/app-${i % 97}/service-${i % 13}/secret-${String(i).padStart(8, "0")}`;
}

/** Writes `count` raw records of `valueBytes` random bytes through `store`'s raw adapter. */
export async function seedRawRecords(store: Store, count: number, options: { prefix?: string; valueBytes?: number } = {}): Promise<void> {
  const prefix = options.prefix ?? "seeded";
  const valueBytes = options.valueBytes ?? 100;
  const raw = await openRaw(store);
  try {
    const batchSize = 10_000;
    for (let start = 0; start < count; start += batchSize) {
      const batch: ScanEntry[] = [];
      const values = randomBytes(valueBytes * Math.min(batchSize, count - start));
      for (let i = start; i < Math.min(count, start + batchSize); i++) {
        const at = (i - start) * valueBytes;
        batch.push({ key: seededKey(prefix, i), value: values.subarray(at, at + valueBytes) });
      }
      await raw.transaction((tx) => putEntries(tx, batch));
    }
  } finally {
    await raw.close();
  }
}

/** The rows of a PostgreSQL store's key space, counted with a plain client. */
export async function postgresRowCount(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM egide_storage");
  return rows[0]?.n ?? 0;
}

/** A plain `pg` client on `store`'s database (the caller ends it). */
export async function postgresClient(store: Store): Promise<pg.Client> {
  const client = new pg.Client({
    host: postgresServer.host,
    port: postgresServer.port,
    user: postgresServer.username,
    password: postgresServer.password,
    database: (store.database as TestDatabase).name,
  });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** Where the parts of a backup file are. */
export interface BackupLayout {
  /** Header bytes, MAC included. */
  headerBytes: number;
  /** The chunk size from the header. */
  chunkBytes: number;
  /** Start and end (exclusive) of every chunk, tag included. */
  chunks: Array<{ start: number; end: number }>;
  /** Plaintext bytes of all chunks (the record encodings and the end marker). */
  contentBytes: number;
  /** Offset of the unseal-records section in the header. */
  unsealAt: number;
  unsealBytes: number;
}

/** Takes a backup file apart following docs/backup-format.md. */
export function backupLayout(file: Buffer): BackupLayout {
  if (file.subarray(0, 8).toString("ascii") !== "EGIDEBAK") throw new Error("not a backup file");
  const chunkBytes = file.readUInt32BE(10);
  const typeBytes = file.readUInt8(77);
  const unsealBytes = file.readUInt32BE(78 + typeBytes);
  const unsealAt = 82 + typeBytes;
  const headerBytes = unsealAt + unsealBytes + 32;
  const chunks: Array<{ start: number; end: number }> = [];
  for (let start = headerBytes; start < file.length; start += chunkBytes + 16)
    chunks.push({ start, end: Math.min(file.length, start + chunkBytes + 16) });
  const contentBytes = chunks.reduce((sum, chunk) => sum + chunk.end - chunk.start - 16, 0);
  return { headerBytes, chunkBytes, chunks, contentBytes, unsealAt, unsealBytes };
}

/** A copy of `bytes` with bit 0 of byte `at` flipped. */
export function flipBit(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

/** The hidden temporary files of `output`'s writers in its folder. */
export function partialFiles(dir: string, outputName: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith(`.${outputName}.partial-`));
}

/** Spawns `egide …args` (clean environment, stdin written then closed) without waiting. */
export function spawnEgide(
  args: readonly string[],
  options: { env?: Record<string, string>; input?: string } = {},
): { child: ChildProcess; exited: Promise<CliRun & { signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [EGIDE_BIN, ...args], { env: cleanEnv(options.env), stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<CliRun & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  child.stdin?.on("error", () => undefined);
  child.stdin?.end(options.input ?? "");
  return { child, exited };
}

/** Polls `condition` every `intervalMs` until it holds; fails after `timeoutMs` or when `stop` says so. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  options: { timeoutMs?: number; intervalMs?: number; stop?: () => boolean } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (await condition()) return;
    if (options.stop?.()) throw new Error(`gave up waiting for ${what}: the process ended first`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 5));
  }
}

/** The exit code, stdout and the one `egide: …` line of a failed run, for compact assertions. */
export function failure(run: CliRun): { code: number | null; stdout: string; lines: number; message: string } {
  const lines = run.stderr.split("\n").filter((line) => line !== "");
  return { code: run.code, stdout: run.stdout, lines: lines.length, message: lines[0] ?? "" };
}
