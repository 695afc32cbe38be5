#!/usr/bin/env node
// Backup, restore and migrate of EGIDE_BENCH_ENTRIES (default 1,000,000) entries of 256 bytes,
// on SQLite and on PostgreSQL, through the real `egide` CLI (bench/run-measured.mjs runs each
// command in a fresh process and reports its wall time and peak RSS). Goals (issue 6): peak
// RSS under 200 MB at any size; restore into PostgreSQL at least 20,000 entries/s.
//
// Baselines measured in the same run with the raw drivers: inserting the same rows, in key
// order, in one transaction (better-sqlite3 prepared statement; pg multi-row unnest batches of
// 1,000) and
// reading them back in key order (keyset pages of 1,000), so the ratios show what the
// format's encryption, verification pass and safety cost.
//
//   cd apps/cli && EGIDE_BENCH_ENTRIES=1000000 node bench/backup-bench.mjs
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import pg from "pg";
import { SealManager } from "@egide/crypto-envelope";
import { putEntries } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { createTestDatabase, postgresServer } from "@egide/test-postgres";

const here = dirname(fileURLToPath(import.meta.url));
const ENTRIES = Number(process.env.EGIDE_BENCH_ENTRIES ?? 1_000_000);
const VALUE_BYTES = 256;
const work = mkdtempSync(join(tmpdir(), "egide-backup-bench-"));
const results = [];

function key(i) {
  // Spread over folders like real paths: app-<n>/service-<m>/secret-<i>.
  return `bench/app-${i % 97}/service-${i % 13}/secret-${String(i).padStart(8, "0")}`;
}

function sqliteToml(file) {
  return `[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(file)}\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`;
}

function postgresToml(database) {
  const { host, port, username } = postgresServer;
  return `[storage]\ntype = "postgresql"\n[storage.postgresql]\nhost = ${JSON.stringify(host)}\nport = ${port}\nusername = ${JSON.stringify(username)}\ndatabase = ${JSON.stringify(database)}\npool_min = 1\npool_max = 4\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`;
}

function config(name, text) {
  const file = join(work, name);
  writeFileSync(file, text);
  return file;
}

/** Runs `egide <args>` in a fresh process; returns its wall time and peak RSS. */
function measure(label, args, unsealKey, entries) {
  const output = execFileSync(process.execPath, [join(here, "run-measured.mjs"), JSON.stringify(args)], {
    env: { ...process.env, EGIDE_BENCH_UNSEAL_KEY: unsealKey },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = output.split("\n").find((l) => l.startsWith("@@RESULT "));
  const result = JSON.parse(line.slice("@@RESULT ".length));
  if (result.code !== 0) throw new Error(`${label} exited ${result.code}: ${output}`);
  const row = { label, entries, seconds: result.ms / 1000, perSecond: entries / (result.ms / 1000), rssMb: result.maxRssKb / 1024 };
  results.push(row);
  process.stderr.write(`${label}: ${Math.round(row.perSecond).toLocaleString("en-US")} entries/s, peak RSS ${row.rssMb.toFixed(0)} MB\n`);
  return row;
}

/** Seeds an installation (1-of-1) with ENTRIES raw records in a SQLite file; returns the unseal key. */
async function seedSqlite(file) {
  const raw = SqliteBackend.open({ path: file });
  const seal = await SealManager.open(raw);
  const { shares } = await seal.initialize({ shares: 1, threshold: 1 });
  const value = () => randomBytes(VALUE_BYTES);
  for (let start = 0; start < ENTRIES; start += 10_000) {
    const batch = [];
    for (let i = start; i < Math.min(ENTRIES, start + 10_000); i++) batch.push({ key: key(i), value: value() });
    await raw.transaction((tx) => putEntries(tx, batch));
  }
  await raw.close();
  return shares[0].toString("base64");
}

/** Raw better-sqlite3: insert every row in one transaction, then read them in key order. */
function rawSqlite(file) {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE t (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID");
  const insert = db.prepare("INSERT INTO t (key, value) VALUES (?, ?)");
  // In key order, as a restore writes them (a B-tree fills fastest that way).
  const rows = Array.from({ length: ENTRIES }, (_, i) => [key(i), randomBytes(VALUE_BYTES)]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  let started = performance.now();
  db.transaction(() => {
    for (const [k, v] of rows) insert.run(k, v);
  })();
  const writeSeconds = (performance.now() - started) / 1000;
  const page = db.prepare("SELECT key, value FROM t WHERE key > ? ORDER BY key LIMIT 1000");
  started = performance.now();
  let after = "";
  let count = 0;
  for (;;) {
    const got = page.all(after);
    count += got.length;
    if (got.length < 1000) break;
    after = got[got.length - 1].key;
  }
  const readSeconds = (performance.now() - started) / 1000;
  db.close();
  if (count !== ENTRIES) throw new Error("raw sqlite read count mismatch");
  return { write: ENTRIES / writeSeconds, read: ENTRIES / readSeconds };
}

/** Raw pg: multi-row unnest inserts of 1,000 in one transaction, then keyset reads of 1,000. */
async function rawPostgres(database) {
  const client = new pg.Client({ host: postgresServer.host, port: postgresServer.port, user: postgresServer.username, database });
  await client.connect();
  await client.query('CREATE TABLE t (key TEXT COLLATE "C" PRIMARY KEY, value BYTEA NOT NULL)');
  const sorted = Array.from({ length: ENTRIES }, (_, i) => key(i)).sort();
  let started = performance.now();
  await client.query("BEGIN");
  for (let start = 0; start < ENTRIES; start += 1000) {
    const keys = sorted.slice(start, start + 1000);
    const values = keys.map(() => randomBytes(VALUE_BYTES));
    await client.query("INSERT INTO t (key, value) SELECT * FROM unnest($1::text[], $2::bytea[])", [keys, values]);
  }
  await client.query("COMMIT");
  const writeSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  let after = "";
  let count = 0;
  for (;;) {
    const { rows } = await client.query("SELECT key, value FROM t WHERE key > $1 ORDER BY key LIMIT 1000", [after]);
    count += rows.length;
    if (rows.length < 1000) break;
    after = rows[rows.length - 1].key;
  }
  await client.query("COMMIT");
  const readSeconds = (performance.now() - started) / 1000;
  await client.end();
  if (count !== ENTRIES) throw new Error("raw pg read count mismatch");
  return { write: ENTRIES / writeSeconds, read: ENTRIES / readSeconds };
}

const databases = [];
try {
  process.stderr.write(`seeding ${ENTRIES.toLocaleString("en-US")} entries of ${VALUE_BYTES} bytes…\n`);
  const sqliteSource = join(work, "source.db");
  const unsealKey = await seedSqlite(sqliteSource);
  const pgSource = await createTestDatabase("bench_src");
  const pgTarget = await createTestDatabase("bench_dst");
  const pgRaw = await createTestDatabase("bench_raw");
  databases.push(pgSource, pgTarget, pgRaw);
  const files = {
    sqliteSource: config("sqlite-source.toml", sqliteToml(sqliteSource)),
    sqliteTarget: config("sqlite-target.toml", sqliteToml(join(work, "target.db"))),
    sqliteBack: config("sqlite-back.toml", sqliteToml(join(work, "back.db"))),
    pgSource: config("pg-source.toml", postgresToml(pgSource.name)),
    pgTarget: config("pg-target.toml", postgresToml(pgTarget.name)),
  };
  const count = ENTRIES + 3; // plus the installation's seal config, root key and keyring
  const sqliteFile = join(work, "sqlite.enc");
  const pgFile = join(work, "pg.enc");

  measure("SQLite: backup (offline)", ["operator", "backup", "--config", files.sqliteSource, "--output", sqliteFile], unsealKey, count);
  measure(
    "SQLite: restore (blank target)",
    ["operator", "restore", "--input", sqliteFile, "--config", files.sqliteTarget],
    unsealKey,
    count,
  );
  measure("migrate SQLite → PostgreSQL", ["operator", "migrate", "--from", files.sqliteSource, "--to", files.pgSource], unsealKey, count);
  measure("PostgreSQL: backup (offline)", ["operator", "backup", "--config", files.pgSource, "--output", pgFile], unsealKey, count);
  measure("PostgreSQL: restore (blank target)", ["operator", "restore", "--input", pgFile, "--config", files.pgTarget], unsealKey, count);
  measure("migrate PostgreSQL → SQLite", ["operator", "migrate", "--from", files.pgSource, "--to", files.sqliteBack], unsealKey, count);
  process.stderr.write("raw driver baselines…\n");
  const rawLite = rawSqlite(join(work, "raw.db"));
  const rawPg = await rawPostgres(pgRaw.name);

  const fileMb = (file) => (statSync(file).size / 1024 / 1024).toFixed(0);
  const fmt = (n) => Math.round(n).toLocaleString("en-US");
  const baseline = {
    "SQLite: backup (offline)": rawLite.read,
    "SQLite: restore (blank target)": rawLite.write,
    "migrate SQLite → PostgreSQL": rawPg.write,
    "PostgreSQL: backup (offline)": rawPg.read,
    "PostgreSQL: restore (blank target)": rawPg.write,
    "migrate PostgreSQL → SQLite": rawLite.write,
  };
  const lines = [
    `# egide operator backup / restore / migrate (Node.js ${process.version}, ${cpus().length} cores)`,
    "",
    `${fmt(ENTRIES)} entries of ${VALUE_BYTES} bytes (+3 installation records); each command in a fresh process (peak RSS of that process). Backup files: SQLite ${fileMb(sqliteFile)} MB, PostgreSQL ${fileMb(pgFile)} MB. Restore verifies the whole file, then reads it again inside one transaction.`,
    "",
    "| operation | entries/s | seconds | peak RSS | raw driver baseline | ratio | goal |",
    "|---|---:|---:|---:|---|---:|---|",
  ];
  for (const row of results) {
    const base = baseline[row.label];
    const kind = row.label.includes("backup") ? "keyset read" : "insert, one transaction";
    const goals = [`RSS < 200 MB: ${row.rssMb < 200 ? "met" : "**not met**"}`];
    if (row.label.startsWith("PostgreSQL: restore")) goals.push(`≥ 20,000/s: ${row.perSecond >= 20_000 ? "met" : "**not met**"}`);
    lines.push(
      `| ${row.label} | ${fmt(row.perSecond)} | ${row.seconds.toFixed(1)} | ${row.rssMb.toFixed(0)} MB | ${fmt(base)}/s (${kind}) | ${(row.perSecond / base).toFixed(2)}× | ${goals.join("; ")} |`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  for (const database of databases) await database.drop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
