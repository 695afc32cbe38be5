// `pnpm bench`: the SQLite backend (built dist) against raw better-sqlite3 prepared statements
// on a second database file with the same pragmas and schema, in the same run, as ratios; then
// a demonstration that `list` costs O(children), not O(keys under the prefix).
//
// Backend calls are awaited one after another, the way a caller uses the async API; raw calls
// are plain synchronous statement calls. Every operation is timed in alternating raw/backend
// rounds (the order flips each round) and the per-round median is reported.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import { compareAlternating, formatCount as fmt, median, randomPicker } from "@egide/bench-timing";
import { prefixSuccessor } from "@egide/storage-core";
import { SqliteBackend } from "../dist/index.js";

const ROUNDS = 3;
const ROUND_MS = 1000;
const WARMUP_MS = 200;
const FOLDERS = 100;
const KEYS = 10_000;
const VALUE = randomBytes(256);
const SCAN_PAGE = 256;

// The schema and upsert the backend uses (src/sqlite-schema.ts, src/sqlite-connection.ts).
const SCHEMA = `
  CREATE TABLE egide_storage (key TEXT PRIMARY KEY, value BLOB NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE INDEX idx_storage_prefix ON egide_storage (key);`;
const UPSERT =
  "INSERT INTO egide_storage (key, value, created_at, updated_at) VALUES (?, ?, ?, ?) " +
  "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

/** Point-operation keys: `bench/f{i % 100}/k{i}`, 100 folders of 100 keys. */
const key = (i) => `bench/f${i % FOLDERS}/k${i}`;
const folder = (i) => `bench/f${i % FOLDERS}/`;
// A fixed random visiting order, so both sides touch the same keys and pay the same lookup.
const pick = randomPicker(KEYS);

/** A raw better-sqlite3 connection set up like the backend's writer, with its statements. */
function openRaw(file) {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("cache_size = -10000");
  db.pragma("busy_timeout = 5000");
  db.exec(SCHEMA);
  const get = db.prepare("SELECT value FROM egide_storage WHERE key = ?").pluck();
  const exists = db.prepare("SELECT 1 FROM egide_storage WHERE key = ?").pluck();
  const upsert = db.prepare(UPSERT);
  // A prefix range has no upper bound when prefixSuccessor() is null (the empty prefix):
  // binding NULL to `key < ?` would match nothing, so the open range gets its own statement.
  const ranged = (sql) => {
    const bounded = db.prepare(sql.replace("$UPPER", " AND key < ?"));
    const open = db.prepare(sql.replace("$UPPER", ""));
    return { bounded, open, all: (from, before) => (before === null ? open.all(from) : bounded.all(from, before)) };
  };
  const range = ranged("SELECT key FROM egide_storage WHERE key >= ?$UPPER ORDER BY key");
  range.bounded.pluck();
  range.open.pluck();
  const page = ranged(`SELECT key, value FROM egide_storage WHERE key >= ?$UPPER ORDER BY key LIMIT ${SCAN_PAGE}`);
  const nextPage = ranged(`SELECT key, value FROM egide_storage WHERE key > ?$UPPER ORDER BY key LIMIT ${SCAN_PAGE}`);
  const put = (k, v) => {
    const now = Date.now();
    upsert.run(k, v, now, now);
  };
  const putMany = db.transaction((keys) => {
    for (const k of keys) put(k, VALUE);
  });
  return {
    db,
    get: (k) => get.get(k) ?? null,
    exists: (k) => exists.get(k) !== undefined,
    put,
    putMany: (keys) => putMany.immediate(keys),
    /** The naive listing: read every key under the prefix, fold them into children in JS. */
    list(prefix) {
      const children = [];
      for (const k of range.all(prefix, prefixSuccessor(prefix))) {
        const rest = k.slice(prefix.length);
        const slash = rest.indexOf("/");
        const child = slash === -1 ? rest : rest.slice(0, slash + 1);
        if (children[children.length - 1] !== child) children.push(child);
      }
      return children;
    },
    /** Keyset pagination in pages of 256, stopping at the first short page. */
    scan(prefix) {
      const before = prefixSuccessor(prefix);
      const entries = [];
      let rows = page.all(prefix, before);
      for (;;) {
        entries.push(...rows);
        if (rows.length < SCAN_PAGE) return entries;
        rows = nextPage.all(rows[rows.length - 1].key, before);
      }
    },
  };
}

async function drain(iterable) {
  let count = 0;
  for await (const _ of iterable) count++;
  return count;
}

const micros = (ms) => (ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} µs`);

/** Median wall time of `calls` awaited calls of `fn`, in ms. */
async function medianCall(fn, calls) {
  const samples = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await fn();
    samples.push(performance.now() - started);
  }
  return median(samples);
}

async function pointOperations(dir) {
  const backend = SqliteBackend.open({ path: join(dir, "backend.db") });
  const raw = openRaw(join(dir, "raw.db"));
  const all = Array.from({ length: KEYS }, (_, i) => key(i));
  await backend.transaction(async (tx) => {
    for (const k of all) await tx.put(k, VALUE);
  });
  raw.putMany(all);

  const check = await backend.get(key(7));
  if (!check?.equals(VALUE) || !raw.get(key(7))?.equals(VALUE)) throw new Error("preload failed");
  if ((await backend.list("bench/")).length !== FOLDERS || raw.list("bench/").length !== FOLDERS) throw new Error("list mismatch");
  if ((await drain(backend.scan(folder(3)))) !== raw.scan(folder(3)).length) throw new Error("scan mismatch");

  // Each row: [label, raw op, backend op]. Puts overwrite preloaded keys, so sizes stay put.
  const rows = [
    ["get", (n) => raw.get(key(pick(n))), (n) => backend.get(key(pick(n)))],
    ["put", (n) => raw.put(key(pick(n)), VALUE), (n) => backend.put(key(pick(n)), VALUE)],
    ["exists", (n) => raw.exists(key(pick(n))), (n) => backend.exists(key(pick(n)))],
    ["list (folder of 100 keys)", (n) => raw.list(folder(n)), (n) => backend.list(folder(n))],
    ["list (100 folders, 10,000 keys)", () => raw.list("bench/"), () => backend.list("bench/")],
    ["scan (folder of 100 keys)", (n) => raw.scan(folder(n)), (n) => drain(backend.scan(folder(n)))],
    [
      "transaction (10 puts)",
      (n) => raw.putMany(Array.from({ length: 10 }, (_, i) => key(pick(n * 10 + i)))),
      (n) =>
        backend.transaction(async (tx) => {
          for (let i = 0; i < 10; i++) await tx.put(key(pick(n * 10 + i)), VALUE);
        }),
    ],
  ];

  console.log(`Point operations: ${KEYS.toLocaleString("en-US")} keys of 256 bytes, WAL, synchronous=NORMAL, cache 10,000 KiB`);
  console.log(`(median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms each, after a ${WARMUP_MS} ms warm-up)\n`);
  const header = ["operation".padEnd(34), "raw ops/s".padStart(12), "backend ops/s".padStart(14), "ratio".padStart(7)].join("");
  console.log(header);
  console.log("-".repeat(header.length));
  const results = {};
  for (const [label, rawOp, backendOp] of rows) {
    const {
      a: rawRate,
      b: backendRate,
      ratio,
    } = await compareAlternating(rawOp, backendOp, { rounds: ROUNDS, roundMs: ROUND_MS, warmupMs: WARMUP_MS, aSync: true });
    const result = { raw: rawRate, backend: backendRate, ratio };
    results[label] = result;
    console.log(
      [label.padEnd(34), fmt(result.raw).padStart(12), fmt(result.backend).padStart(14), `${result.ratio.toFixed(2)}×`.padStart(7)].join(
        "",
      ),
    );
  }
  console.log(
    "\nraw list = one range SELECT of every key under the prefix, folded into children in JS;" +
      "\nbackend list = skip-scan: index probes of 1 key, doubling over runs of leaves (to 64), one jump per folder;" +
      "\nraw scan = keyset pages of 256 that stop at the first short page.",
  );
  for (const op of ["get", "put"]) {
    const { ratio } = results[op];
    console.log(`goal: backend ${op} >= 0.80× raw: ${ratio.toFixed(2)}× ${ratio >= 0.8 ? "MET" : "NOT MET"}`);
  }
  await backend.close();
  raw.db.close();
}

async function listingCost(dir) {
  const backend = SqliteBackend.open({ path: join(dir, "listing.db") });
  const raw = openRaw(join(dir, "listing-raw.db"));
  const OTHERS = 200_000;
  const WIDE = 20_000;
  const keys = [];
  for (let i = 0; i < OTHERS; i++) keys.push(`other${i % 1000}/k${i}`);
  for (let i = 0; i < 10; i++) keys.push(`target/k${i}`);
  // `wide/`: 10 children, but 20,000 keys underneath them.
  for (let i = 0; i < WIDE; i++) keys.push(`wide/sub${i % 10}/k${i}`);
  const loadStarted = performance.now();
  for (let from = 0; from < keys.length; from += 10_000) {
    const chunk = keys.slice(from, from + 10_000);
    await backend.transaction(async (tx) => {
      for (const k of chunk) await tx.put(k, VALUE);
    });
    raw.putMany(chunk);
  }
  const loadMs = performance.now() - loadStarted;

  // The same 10-key folder in an otherwise empty database, for comparison.
  const alone = SqliteBackend.open({ path: join(dir, "alone.db") });
  for (let i = 0; i < 10; i++) await alone.put(`target/k${i}`, VALUE);

  const target = await backend.list("target/");
  const root = await backend.list("");
  const wide = await backend.list("wide/");
  if (target.length !== 10 || root.length !== 1002 || wide.length !== 10) throw new Error("unexpected listing sizes");
  if (raw.list("wide/").length !== 10 || raw.list("").length !== 1002) throw new Error("naive listing mismatch");

  const targetMs = await medianCall(() => backend.list("target/"), 1000);
  const aloneMs = await medianCall(() => alone.list("target/"), 1000);
  const rootMs = await medianCall(() => backend.list(""), 100);
  const wideMs = await medianCall(() => backend.list("wide/"), 1000);
  const naiveWideMs = await medianCall(() => raw.list("wide/"), 100);
  const naiveRootMs = await medianCall(() => raw.list(""), 10);

  console.log(
    `\nListing cost: ${fmt(keys.length)} keys (200,000 under other0/…other999/, 10 under target/, 20,000 under wide/sub0/…sub9/)`,
  );
  console.log(`(loaded in ${(loadMs / 1000).toFixed(1)} s into both files; median of 1,000 calls unless noted)\n`);
  console.log(`backend list("target/")  -> 10 keys,        in this database:       ${micros(targetMs)}`);
  console.log(`backend list("target/")  -> 10 keys,        alone in a database:    ${micros(aloneMs)}`);
  console.log(`backend list("wide/")    -> 10 folders over 20,000 keys:            ${micros(wideMs)}`);
  console.log(
    `naive   list("wide/")    -> range read of 20,000 keys (100 calls):  ${micros(naiveWideMs)}  (${(naiveWideMs / wideMs).toFixed(0)}× the skip-scan)`,
  );
  console.log(
    `backend list("")         -> 1,002 entries (100 calls):              ${micros(rootMs)}  (${micros(rootMs / root.length)} per child)`,
  );
  console.log(
    `naive   list("")         -> range read of ${fmt(keys.length)} keys (10 calls): ${micros(naiveRootMs)}  (${(naiveRootMs / rootMs).toFixed(0)}× the skip-scan)`,
  );
  await alone.close();
  await backend.close();
  raw.db.close();
}

const dir = mkdtempSync(join(tmpdir(), "egide-sqlite-bench-"));
try {
  const started = performance.now();
  const probe = new Database(":memory:");
  console.log(`@egide/storage-sqlite bench, node ${process.version}, SQLite ${probe.prepare("SELECT sqlite_version()").pluck().get()}\n`);
  probe.close();
  await pointOperations(dir);
  await listingCost(dir);
  console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
