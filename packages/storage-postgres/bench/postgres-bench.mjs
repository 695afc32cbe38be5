// `pnpm bench`: the PostgreSQL backend (built dist) against raw `pg` queries on a second pool
// with the same settings, on a second schema with the same tables, in the same run, as ratios;
// then a demonstration that `list` costs O(children), not O(keys beside or under the prefix).
//
// Everything runs in a fresh database (`egide_bench_<random>`) that is dropped at the end, even
// when the run fails. The server is PGHOST / PGPORT / PGUSER / PGPASSWORD, or 127.0.0.1:5432 as
// postgres (trust), like the tests.
//
// Each operation is timed with 1 and with 32 operations in flight (that many async workers, each
// awaiting one call after another, for a fixed time), in alternating raw/backend rounds (the
// order flips each round); the per-round median is reported.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { timeConcurrent } from "@egide/bench-timing";
import { prefixSuccessor } from "@egide/storage-core";
import { APPLICATION_NAME, POSTGRES_SCAN_PAGE_SIZE, PostgresBackend } from "../dist/index.js";

const ROUNDS = 5;
const ROUND_MS = 1000;
const WARMUP_MS = 200;
const CONCURRENCY = [1, 32];
const FOLDERS = 100;
const KEYS = 10_000;
const VALUE = randomBytes(256);
const SCAN_PAGE = POSTGRES_SCAN_PAGE_SIZE;
const POINT_GOAL = 0.9;
const LIST_GOAL_MS = 5;
const OTHERS = 1_000_000;

const SERVER = {
  host: process.env.PGHOST || "127.0.0.1",
  port: Number(process.env.PGPORT || 5432),
  username: process.env.PGUSER || "postgres",
  ...(process.env.PGPASSWORD ? { password: process.env.PGPASSWORD } : {}),
};
const DATABASE = `egide_bench_${randomBytes(4).toString("hex")}`;
// EGIDE_BENCH_CHANGE_FEED=0 runs both sides without the change feed's NOTIFY (change_feed = false).
const CHANGE_FEED = process.env.EGIDE_BENCH_CHANGE_FEED !== "0";
const BACKEND_OPTIONS = { ...SERVER, database: DATABASE, poolMin: 0, poolMax: 10, prepareThreshold: 5, changeFeed: CHANGE_FEED };

/** Point-operation keys: `bench/f{i % 100}/k{i}`, 100 folders of 100 keys. */
const key = (i) => `bench/f${i % FOLDERS}/k${i}`;
const folder = (i) => `bench/f${i % FOLDERS}/`;
// A fixed random visiting order, so both sides touch the same keys and pay the same lookup.
const ORDER = Int32Array.from({ length: 1 << 16 }, () => Math.floor(Math.random() * KEYS));
const pick = (n) => ORDER[n & 0xffff];

// New server connections, counted so that reconnects (a destroyed client must be replaced)
// show up next to the numbers they cost.
let connections = 0;
const connect = pg.Client.prototype.connect;
pg.Client.prototype.connect = function countedConnect(...args) {
  connections++;
  return connect.apply(this, args);
};

/** A raw client on the server (not the bench database), for CREATE / DROP DATABASE. */
async function withAdmin(fn) {
  const client = new pg.Client({
    host: SERVER.host,
    port: SERVER.port,
    user: SERVER.username,
    password: SERVER.password,
    database: "postgres",
    connectionTimeoutMillis: 5000,
  });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Raw `pg`: a pool with the backend's settings (src/postgres-connection.ts and the pool options
 * of src/client-pool.ts); `side(statements, named)` gives the operations on the table those
 * statements name, with the backend's SQL texts (src/postgres-sql.ts) run as named
 * statements or unnamed ones.
 */
function openRaw(options, ssl) {
  const pool = new pg.Pool({
    host: options.host,
    port: options.port,
    database: options.database,
    user: options.username,
    password: options.password,
    ssl,
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: options.connectionTimeoutMs,
    ...(options.statementTimeoutMs > 0 ? { statement_timeout: options.statementTimeoutMs } : {}),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    min: options.poolMin,
    max: options.poolMax,
    idleTimeoutMillis: options.idleTimeoutMs,
  });
  pool.on("error", () => undefined);
  const timeout = options.statementTimeoutMs > 0 ? `; SET LOCAL statement_timeout = ${Math.round(options.statementTimeoutMs)}` : "";
  const beginReadOnly = `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY${timeout}`;
  const beginReadWrite = `BEGIN ISOLATION LEVEL SERIALIZABLE${timeout}`;
  let retries = 0;

  /** The raw operations on the table `statements` name, with statement names or without. */
  const side = (statements, named) => {
    const table = statements.get.slice(statements.get.indexOf(" FROM ") + 6, statements.get.indexOf(" WHERE "));
    const rangeBounded = `SELECT key FROM ${table} WHERE key >= $1 AND key < $2 ORDER BY key`;
    const rangeOpen = `SELECT key FROM ${table} WHERE key >= $1 ORDER BY key`;
    // Statement names are per connection: one per text (the schema is part of the name).
    const schema = table.slice(1, table.indexOf('"', 1));
    const run = (runner, label, text, values) => runner.query(named ? { text, values, name: `${schema}_${label}` } : { text, values });
    // With the change feed (on by default) the backend's writes NOTIFY; raw pg does the same,
    // so that the ratio stays the backend's own overhead (the NOTIFY's cost shows in both).
    const notifying = statements.channel !== undefined;
    const payload = (keys) => JSON.stringify({ o: "raw", t: Date.now(), k: keys });
    return {
      get: async (k) => (await run(pool, "get", statements.get, [k])).rows[0]?.value ?? null,
      exists: async (k) => (await run(pool, "exists", statements.exists, [k])).rowCount === 1,
      put: async (k, v) => {
        if (notifying) await run(pool, "put_notify", statements.putNotifying, [k, v, payload([k])]);
        else await run(pool, "put", statements.put, [k, v]);
      },
      /** The naive listing: one range SELECT of every key under the prefix, folded into children in JS. */
      async list(prefix) {
        const before = prefixSuccessor(prefix);
        const result =
          before === null ? await run(pool, "range_open", rangeOpen, [prefix]) : await run(pool, "range", rangeBounded, [prefix, before]);
        const children = [];
        for (const { key: k } of result.rows) {
          const rest = k.slice(prefix.length);
          if (rest === "") continue;
          const slash = rest.indexOf("/");
          const child = slash === -1 ? rest : rest.slice(0, slash + 1);
          if (children[children.length - 1] !== child) children.push(child);
        }
        return children;
      },
      /** Keyset pages of 256 in a REPEATABLE READ READ ONLY transaction on one client, like the backend. */
      async scan(prefix) {
        const before = prefixSuccessor(prefix);
        const client = await pool.connect();
        let ok = false;
        try {
          await client.query(beginReadOnly);
          const entries = [];
          let from = prefix;
          let inclusive = true;
          for (;;) {
            const shape = `${inclusive}${before !== null}`;
            const values = before === null ? [from, SCAN_PAGE] : [from, before, SCAN_PAGE];
            const { rows } = await run(
              client,
              `page_${inclusive ? "ge" : "gt"}_${before !== null ? "b" : "o"}`,
              statements.page[shape],
              values,
            );
            for (const row of rows) entries.push(row);
            if (rows.length < SCAN_PAGE) break;
            from = rows[rows.length - 1].key;
            inclusive = false;
          }
          await client.query("COMMIT");
          ok = true;
          return entries;
        } finally {
          client.release(ok ? undefined : true);
        }
      },
      /**
       * A SERIALIZABLE transaction of upserts, retried on serialization failures and deadlocks
       * with the backend's backoff (withRetries: 5 ms doubling, at most 500 ms, jittered, 10
       * attempts). A failed attempt is rolled back and its client reused, the usual raw-pg way.
       */
      async putMany(keys, v) {
        for (let attempt = 1; ; attempt++) {
          const client = await pool.connect();
          let reusable = true;
          try {
            await client.query(beginReadWrite);
            for (const k of keys) await run(client, "put", statements.put, [k, v]);
            await client.query(notifying ? statements.notifyAndCommit(client.escapeLiteral(payload([...new Set(keys)]))) : "COMMIT");
            return;
          } catch (error) {
            await client.query("ROLLBACK").catch(() => (reusable = false));
            if ((error.code !== "40001" && error.code !== "40P01") || attempt >= 10) throw error;
            retries++;
          } finally {
            client.release(reusable ? undefined : true);
          }
          const delay = Math.min(500, 5 * 2 ** (attempt - 1));
          await new Promise((resolve) => setTimeout(resolve, delay / 2 + Math.random() * (delay / 2)));
        }
      },
    };
  };
  return { pool, side, retries: () => retries };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)];

/**
 * Times one operation on both sides (and, for context, raw without statement names); returns
 * medians of ops/s, of the per-round ratios, and the reconnects per side.
 */
async function compare(raw, backend, unnamed, concurrency) {
  await timeConcurrent(raw, WARMUP_MS, concurrency);
  await timeConcurrent(backend, WARMUP_MS, concurrency);
  if (unnamed) await timeConcurrent(unnamed, WARMUP_MS, concurrency);
  const rates = { raw: [], backend: [], unnamed: [] };
  const cpu = { raw: [], backend: [], unnamed: [] };
  const reconnects = { raw: 0, backend: 0 };
  const ratios = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ["raw", "backend", "unnamed"] : ["unnamed", "backend", "raw"];
    for (const side of order) {
      const op = { raw, backend, unnamed }[side];
      if (!op) continue;
      const before = connections;
      const result = await timeConcurrent(op, ROUND_MS, concurrency);
      rates[side].push(result.rate);
      cpu[side].push(result.cpu);
      if (side !== "unnamed") reconnects[side] += connections - before;
    }
    ratios.push(rates.backend[round] / rates.raw[round]);
  }
  return {
    raw: median(rates.raw),
    backend: median(rates.backend),
    unnamed: unnamed ? median(rates.unnamed) : undefined,
    ratio: median(ratios),
    cpu: { raw: median(cpu.raw), backend: median(cpu.backend) },
    reconnects,
  };
}

async function drain(iterable) {
  let count = 0;
  for await (const _ of iterable) count++;
  return count;
}

const fmt = (n) => Math.round(n).toLocaleString("en-US");
const micros = (ms) => (ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`);

/** Wall times of `calls` awaited calls of `fn`, in ms. */
async function samples(fn, calls) {
  const out = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await fn();
    out.push(performance.now() - started);
  }
  return out;
}

async function pointOperations(backend, raw) {
  const all = Array.from({ length: KEYS }, (_, i) => key(i));
  // Preload both tables in one statement each; same keys, same value.
  for (const schema of ['"bench_backend"', '"bench_raw"']) {
    await raw.pool.query(`INSERT INTO ${schema}.egide_storage (key, value) SELECT k, $2 FROM unnest($1::text[]) AS k`, [all, VALUE]);
    await raw.pool.query(`ANALYZE ${schema}.egide_storage`);
  }
  const check = await backend.get(key(7));
  if (!check?.equals(VALUE) || !(await raw.named.get(key(7)))?.equals(VALUE)) throw new Error("preload failed");
  if ((await backend.list(folder(3))).length !== KEYS / FOLDERS || (await raw.named.list(folder(3))).length !== KEYS / FOLDERS)
    throw new Error("list mismatch");
  if ((await drain(backend.scan(folder(3)))) !== (await raw.named.scan(folder(3))).length) throw new Error("scan mismatch");

  // Each row: [label, raw op, backend op, raw-unnamed op or null]. Puts overwrite preloaded keys.
  const side = (s) => ({
    get: (n) => s.get(key(pick(n))),
    put: (n) => s.put(key(pick(n)), VALUE),
    exists: (n) => s.exists(key(pick(n))),
  });
  const r = side(raw.named);
  const u = side(raw.unnamed);
  const b = side(backend);
  const rows = [
    ["get", r.get, b.get, u.get],
    ["put", r.put, b.put, u.put],
    ["exists", r.exists, b.exists, u.exists],
    ["list (folder of 100 keys)", (n) => raw.named.list(folder(n)), (n) => backend.list(folder(n)), null],
    ["scan (folder of 100 keys)", (n) => raw.named.scan(folder(n)), (n) => drain(backend.scan(folder(n))), null],
    [
      "transaction (10 puts)",
      (n) =>
        raw.named.putMany(
          Array.from({ length: 10 }, (_, i) => key(pick(n * 10 + i))),
          VALUE,
        ),
      (n) =>
        backend.transaction(async (tx) => {
          for (let i = 0; i < 10; i++) await tx.put(key(pick(n * 10 + i)), VALUE);
        }),
      null,
    ],
  ];

  console.log(
    `Point operations: ${fmt(KEYS)} keys of 256 bytes in ${FOLDERS} folders; pool max ${backend.options.poolMax}, prepare threshold ${backend.options.prepareThreshold}`,
  );
  console.log(
    `(median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms each, after a ${WARMUP_MS} ms warm-up; "in flight" = concurrent callers)\n`,
  );
  const header = [
    "operation".padEnd(28),
    "in flight".padStart(9),
    "raw ops/s".padStart(12),
    "backend ops/s".padStart(15),
    "ratio".padStart(7),
    "raw unnamed".padStart(13),
    "CPU µs/op raw/backend".padStart(23),
    "reconnects".padStart(12),
  ].join("");
  console.log(header);
  console.log("-".repeat(header.length));
  const results = {};
  for (const [label, rawOp, backendOp, unnamedOp] of rows) {
    for (const concurrency of CONCURRENCY) {
      const retriesBefore = raw.retries();
      const result = await compare(rawOp, backendOp, unnamedOp, concurrency);
      results[`${label}@${concurrency}`] = result;
      const retries = raw.retries() - retriesBefore;
      console.log(
        [
          (concurrency === CONCURRENCY[0] ? label : "").padEnd(28),
          String(concurrency).padStart(9),
          fmt(result.raw).padStart(12),
          fmt(result.backend).padStart(15),
          `${result.ratio.toFixed(2)}×`.padStart(7),
          (result.unnamed === undefined ? "" : fmt(result.unnamed)).padStart(13),
          `${result.cpu.raw.toFixed(0)} / ${result.cpu.backend.toFixed(0)}`.padStart(23),
          `${result.reconnects.raw}/${result.reconnects.backend}`.padStart(12),
        ].join("") + (retries > 0 ? `   (raw retried ${fmt(retries)} conflicts)` : ""),
      );
    }
  }
  console.log(
    "\nratio = median of the per-round backend/raw ratios (so not always the quotient of the two median columns);" +
      "\nraw = pool.query() with the backend's SQL texts as named statements; raw unnamed = the same without names;" +
      "\nCPU µs/op = this process's user CPU per operation (client-side cost); reconnects = new connections raw/backend;" +
      "\nraw list = one range SELECT of every key under the prefix, folded into children in JS;" +
      "\nbackend list = one statement: a range read of up to 256 keys, or a recursive CTE walking the key index child by child;" +
      "\nscan = keyset pages of 256 in a REPEATABLE READ READ ONLY transaction on one client (both sides);" +
      "\ntransaction = BEGIN SERIALIZABLE; SET LOCAL statement_timeout, 10 upserts, COMMIT, retried on 40001/40P01;" +
      "\n  both sides roll back and keep the connection after a conflict;" +
      `\nchange feed ${backend.options.changeFeed ? "on: both sides NOTIFY each put (in its statement) and each transaction (with its COMMIT)" : "off (EGIDE_BENCH_CHANGE_FEED=0)"}.`,
  );
  const point = ["get", "put", "exists"].flatMap((op) => CONCURRENCY.map((c) => [`${op} @ ${c}`, results[`${op}@${c}`].ratio]));
  const worst = point.reduce((a, b2) => (b2[1] < a[1] ? b2 : a));
  const met = point.every(([, ratio]) => ratio >= POINT_GOAL);
  console.log(
    `\ngoal ≥ ${POINT_GOAL}× for get/put/exists: ${met ? "MET" : "NOT MET"} ` +
      `(${point.map(([l, ratio]) => `${l}: ${ratio.toFixed(2)}×`).join(", ")}; lowest ${worst[0]})`,
  );
  return results;
}

async function listingCost(backend, raw) {
  const table = '"bench_backend".egide_storage';
  const loadStarted = performance.now();
  await raw.pool.query(`TRUNCATE ${table}`);
  await raw.pool.query(
    `INSERT INTO ${table} (key, value) SELECT 'other' || (i % 1000) || '/k' || i, $1 FROM generate_series(0, ${OTHERS - 1}) AS i`,
    [randomBytes(16)],
  );
  await raw.pool.query(`INSERT INTO ${table} (key, value) SELECT 'target/k' || i, $1 FROM generate_series(0, 9) AS i`, [randomBytes(16)]);
  await raw.pool.query(`ANALYZE ${table}`);
  const loadMs = performance.now() - loadStarted;

  const target = await backend.list("target/");
  const root = await backend.list("");
  const other0 = await backend.list("other0/");
  const naiveOther0 = await raw.onBackendTable.list("other0/");
  if (target.length !== 10 || root.length !== 1001 || other0.length !== 1000 || naiveOther0.length !== 1000) {
    throw new Error(`unexpected listing sizes: ${target.length}, ${root.length}, ${other0.length}, ${naiveOther0.length}`);
  }

  await samples(() => backend.list("target/"), 100);
  const targetTimes = await samples(() => backend.list("target/"), 1000);
  const targetMedian = median(targetTimes);
  const targetP99 = percentile(targetTimes, 99);
  const rootTimes = await samples(() => backend.list(""), 5);
  await samples(() => raw.onBackendTable.list("other0/"), 10);
  await samples(() => backend.list("other0/"), 10);
  const naiveTimes = [];
  const folderTimes = [];
  for (let round = 0; round < 4; round++) {
    if (round % 2 === 0) {
      naiveTimes.push(...(await samples(() => raw.onBackendTable.list("other0/"), 50)));
      folderTimes.push(...(await samples(() => backend.list("other0/"), 50)));
    } else {
      folderTimes.push(...(await samples(() => backend.list("other0/"), 50)));
      naiveTimes.push(...(await samples(() => raw.onBackendTable.list("other0/"), 50)));
    }
  }

  console.log(`\nListing cost: ${fmt(OTHERS + 10)} keys (${fmt(OTHERS)} of 16 bytes under other0/…other999/, 10 under target/)`);
  console.log(`(loaded with INSERT … SELECT FROM generate_series and ANALYZEd in ${(loadMs / 1000).toFixed(1)} s; one call at a time)\n`);
  console.log(`backend list("target/") -> 10 keys (1,000 calls):            median ${micros(targetMedian)}, p99 ${micros(targetP99)}`);
  console.log(
    `backend list("")        -> 1,001 folders (5 calls):          median ${micros(median(rootTimes))}  (${micros(median(rootTimes) / root.length)} per child)`,
  );
  console.log(`backend list("other0/") -> 1,000 keys, skip-scan (200 calls): median ${micros(median(folderTimes))}`);
  console.log(
    `naive   list("other0/") -> one range read of 1,000 keys (200): median ${micros(median(naiveTimes))}  ` +
      `(backend ${(median(folderTimes) / median(naiveTimes)).toFixed(1)}× the naive read)`,
  );
  console.log(
    `\ngoal < ${LIST_GOAL_MS} ms for list("target/") beside ${fmt(OTHERS)} keys: ${targetMedian < LIST_GOAL_MS ? "MET" : "NOT MET"} ` +
      `(median ${micros(targetMedian)}; p99 ${micros(targetP99)}, ${targetP99 < LIST_GOAL_MS ? "also under" : "over"} ${LIST_GOAL_MS} ms)`,
  );
}

async function main() {
  const started = performance.now();
  const server = await withAdmin(
    async (client) => (await client.query("SELECT version() AS version, current_setting('ssl') AS ssl")).rows[0],
  );
  let backend;
  let raw;
  try {
    await withAdmin((client) => client.query(`CREATE DATABASE ${DATABASE}`));
    // The raw schema gets its tables from the backend's own migration, so the DDL is identical.
    const migrator = await PostgresBackend.open({ ...BACKEND_OPTIONS, schema: "bench_raw" });
    const rawSql = migrator.sql;
    await migrator.close();
    backend = await PostgresBackend.open({ ...BACKEND_OPTIONS, schema: "bench_backend" });
    // sslmode prefer: TLS without verification when the server has it, plain text otherwise.
    const ssl = server.ssl === "on" ? { rejectUnauthorized: false } : false;
    raw = openRaw(backend.options, ssl);
    raw.named = raw.side(rawSql, true);
    raw.unnamed = raw.side(rawSql, false);
    // The naive listing of the listing benchmark reads the backend's own table.
    raw.onBackendTable = raw.side(backend.sql, true);
    console.log(
      `@egide/storage-postgres bench, node ${process.version}, ${server.version.split(",")[0]}, database ${DATABASE}, TLS ${ssl ? "on" : "off"}\n`,
    );
    await pointOperations(backend, raw);
    await listingCost(backend, raw);
    console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await backend?.close().catch(() => undefined);
    await raw?.pool.end().catch(() => undefined);
    await dropDatabase();
  }
}

let dropped;
function dropDatabase() {
  dropped ??= withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`)).catch((error) => {
    console.error(`could not drop ${DATABASE}: ${error.message}`);
  });
  return dropped;
}

// Ctrl-C or a kill still drops the database.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    dropDatabase().finally(() => process.exit(130));
  });
}

await main();
