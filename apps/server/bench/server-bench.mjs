// `pnpm bench`: the server end to end over HTTP on loopback, against a bare Fastify route in the
// same run, as ratios.
//
// The server (built dist, started in-process with `startServer`, log level "silent", audit on,
// initialised 1-of-1 and unsealed) runs on a SQLite file, then on a throwaway PostgreSQL
// database (`egide_bench_<random>` on PGHOST / PGPORT / PGUSER / PGPASSWORD, or 127.0.0.1:5432
// as postgres (trust); dropped WITH (FORCE) at the end, even when the run fails). The bare
// route is a separate minimal `Fastify({ logger: false })` app with `GET /const` ->
// {"ok":true}, in the same thread as the server.
//
// Load: autocannon's programmatic API in a worker thread (so it does not share the server's
// event loop), 10 connections, no pipelining, for EGIDE_BENCH_SECONDS (default 10) per
// measurement, each target warmed up for 2 s first. The bare route is measured right before
// each server measurement so both see the same machine state.
//   - reads:  GET  /v1/secret/data/bench/<n> with X-Vault-Token, n rotating over 1,000 secrets
//             of ~200 bytes written beforehand.
//   - writes: POST /v1/secret/data/bench/<n> with a JSON body of ~200 bytes, n rotating over
//             1,000 paths (consecutive requests hit different paths).
// Goals: reads >= 0.4x and writes >= 0.2x the bare route's req/s.
//
// req/s is autocannon's mean of its per-second samples; p50 / p99 come from every response's
// own latency (autocannon's histogram rounds to whole milliseconds).
//
// EGIDE_BENCH_BACKENDS (default "sqlite,postgresql") and EGIDE_BENCH_OPERATIONS (default
// "reads,writes") narrow the run, e.g. for a profile: EGIDE_BENCH_BACKENDS=sqlite
// EGIDE_BENCH_OPERATIONS=reads node --cpu-prof bench/server-bench.mjs
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker, isMainThread, parentPort } from "node:worker_threads";

const SECONDS = Number(process.env.EGIDE_BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = 2;
const CONNECTIONS = 10;
const KEYS = 1000;
const GOALS = { reads: 0.4, writes: 0.2 };
const BACKENDS = (process.env.EGIDE_BENCH_BACKENDS ?? "sqlite,postgresql")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const OPERATIONS = (process.env.EGIDE_BENCH_OPERATIONS ?? "reads,writes")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);

const secretPath = (n) => `/v1/secret/data/bench/${n % KEYS}`;

// ---------------------------------------------------------------------------------------------
// The load generator (worker thread): runs one autocannon measurement per message.

async function loadGenerator() {
  const { default: autocannon } = await import("autocannon");
  let next = 0; // the rotating secret index, shared by all connections
  parentPort.on("message", async (job) => {
    try {
      parentPort.postMessage({ result: await fire(autocannon, job, () => next++) });
    } catch (error) {
      parentPort.postMessage({ error: error?.stack ?? String(error) });
    }
  });
}

async function fire(autocannon, { url, kind, seconds, token, body }, nextIndex) {
  let request;
  if (kind === "bare") {
    request = { method: "GET", path: "/const" };
  } else if (kind === "reads") {
    request = {
      method: "GET",
      headers: { "x-vault-token": token },
      setupRequest: (req) => ({ ...req, path: secretPath(nextIndex()) }),
    };
  } else {
    request = {
      method: "POST",
      headers: { "x-vault-token": token, "content-type": "application/json" },
      body,
      setupRequest: (req) => ({ ...req, path: secretPath(nextIndex()) }),
    };
  }
  let latencies = new Float64Array(1 << 18);
  let count = 0;
  const instance = autocannon({ url, connections: CONNECTIONS, pipelining: 1, duration: seconds, requests: [request] });
  instance.on("response", (_client, status, _bytes, ms) => {
    if (status < 200 || status > 299) return; // counted in non2xx, like autocannon's histogram
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[count++] = ms;
  });
  const result = await instance;
  const sorted = latencies.subarray(0, count).sort();
  const at = (p) => (count === 0 ? NaN : sorted[Math.min(count - 1, Math.floor((p / 100) * count))]);
  return {
    // autocannon does not aggregate in a worker thread (it takes the thread for one of its own
    // workers), so this is its "Req/Sec Avg" computed from the raw result: the mean of the
    // per-second samples, counting successful (2xx) responses only.
    rps: result["2xx"] / result.samples,
    p50: at(50),
    p99: at(99),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    // The non-2xx statuses seen, e.g. "503".
    failedStatuses: Object.keys(result.statusCodeStats ?? {})
      .filter((code) => !code.startsWith("2"))
      .join(", "),
  };
}

// ---------------------------------------------------------------------------------------------
// The main thread: the servers, the measurements and the report.

async function main() {
  for (const backend of BACKENDS) {
    if (backend !== "sqlite" && backend !== "postgresql")
      throw new Error(`unknown backend ${JSON.stringify(backend)} in EGIDE_BENCH_BACKENDS (sqlite, postgresql)`);
  }
  for (const operation of OPERATIONS) {
    if (!(operation in GOALS)) throw new Error(`unknown operation ${JSON.stringify(operation)} in EGIDE_BENCH_OPERATIONS (reads, writes)`);
  }
  if (!(SECONDS > 0))
    throw new Error(`EGIDE_BENCH_SECONDS must be a positive number of seconds, got ${JSON.stringify(process.env.EGIDE_BENCH_SECONDS)}`);
  const { default: Fastify } = await import("fastify");
  const pg = (await import("pg")).default;
  const { parseServerConfig, startServer } = await import("../dist/index.js");

  const worker = new Worker(new URL(import.meta.url));
  let pending;
  worker.on("message", (message) => pending?.(message));
  worker.on("error", (error) => pending?.({ error: error?.stack ?? String(error) }));
  worker.on("exit", (code) => pending?.({ error: `the worker exited (code ${code})` }));
  /** One autocannon run in the worker. */
  const load = (job) =>
    new Promise((resolve, reject) => {
      pending = (message) => {
        pending = undefined;
        if (message.error) reject(new Error(`load generator: ${message.error}`));
        else resolve(message.result);
      };
      worker.postMessage(job);
    });

  const bare = Fastify({ logger: false });
  bare.get("/const", async () => ({ ok: true }));
  await bare.listen({ host: "127.0.0.1", port: 0 });
  const bareUrl = `http://127.0.0.1:${bare.server.address().port}`;

  const value = randomBytes(100).toString("hex"); // 200 bytes
  const writeBody = JSON.stringify({ data: { value } });

  const cleanups = [];
  const cleanup = async () => {
    while (cleanups.length > 0)
      await cleanups
        .pop()()
        .catch((error) => console.error(`cleanup failed: ${error.message}`));
  };
  // Ctrl-C still drops the database and removes the temp files.
  process.once("SIGINT", () => {
    console.error("interrupted; cleaning up");
    cleanup().finally(() => process.exit(130));
  });

  const cpuList = cpus();
  console.log(`# @egide/server benchmark (Node.js ${process.version})\n`);
  console.log(
    `Machine: ${cpuList.length} cores (${cpuList[0]?.model.trim() ?? "unknown"}). The load generator (autocannon, one worker ` +
      `thread), the server and the bare Fastify app (the main thread) and PostgreSQL all share these ${cpuList.length} cores, ` +
      "so every figure includes the client's own CPU cost: compare the ratios, not the absolute numbers.\n",
  );
  console.log(
    `autocannon: ${CONNECTIONS} connections, no pipelining, ${SECONDS} s per measurement after a ${WARMUP_SECONDS} s warm-up ` +
      `of each target; the bare route is measured right before each server measurement. Secrets: ${KEYS.toLocaleString("en-US")} ` +
      `paths, values of ${value.length} bytes (${writeBody.length}-byte JSON body). Audit on (a row per request). req/s counts ` +
      "2xx responses only; p50 / p99 are over those responses; the last column counts non-2xx responses (their statuses) / " +
      "connection errors and timeouts.\n",
  );

  const verdicts = [];
  try {
    for (const backend of BACKENDS) {
      let storageToml;
      let label;
      if (backend === "sqlite") {
        const dir = mkdtempSync(join(tmpdir(), "egide-server-bench-"));
        cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
        storageToml = `[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(join(dir, "egide.db"))}\n`;
        label = "SQLite (a file in a temporary directory, default options)";
      } else {
        const server = {
          host: process.env.PGHOST || "127.0.0.1",
          port: Number(process.env.PGPORT || 5432),
          user: process.env.PGUSER || "postgres",
          password: process.env.PGPASSWORD || undefined,
        };
        const database = `egide_bench_${randomBytes(4).toString("hex")}`;
        const admin = async (sql) => {
          const client = new pg.Client({ ...server, database: "postgres", connectionTimeoutMillis: 5000 });
          client.on("error", () => undefined);
          await client.connect();
          try {
            await client.query(sql);
          } finally {
            await client.end().catch(() => undefined);
          }
        };
        await admin(`CREATE DATABASE "${database}"`);
        cleanups.push(() => admin(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
        storageToml =
          `[storage]\ntype = "postgresql"\n[storage.postgresql]\nhost = ${JSON.stringify(server.host)}\nport = ${server.port}\n` +
          `username = ${JSON.stringify(server.user)}\ndatabase = ${JSON.stringify(database)}\n` +
          (server.password ? 'password_env = "PGPASSWORD"\n' : "");
        label = `PostgreSQL (${server.host}:${server.port}, throwaway database ${database}, default pool options)`;
      }

      const config = parseServerConfig(`log_level = "silent"\n${storageToml}[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`);
      const server = await startServer({ config });
      cleanups.push(() => server.close());
      const { keys, rootToken } = await server.initialize({ shares: 1, threshold: 1 }, true);
      for (const key of keys) key.fill(0);

      const retried = await prefill(server.url, rootToken, writeBody);

      console.log(`## ${label}\n`);
      if (retried > 0)
        console.log(`(writing the ${KEYS.toLocaleString("en-US")} secrets beforehand, ${retried} writes got a 503 and were retried)\n`);
      console.log("| target | req/s (mean) | p50 ms | p99 ms | ratio to bare | goal | non-2xx / errors |");
      console.log("|---|---:|---:|---:|---:|---|---:|");
      for (const operation of OPERATIONS) {
        const serverJob = { url: server.url, kind: operation, token: rootToken, body: writeBody };
        const bareJob = { url: bareUrl, kind: "bare" };
        await load({ ...serverJob, seconds: WARMUP_SECONDS });
        await load({ ...bareJob, seconds: WARMUP_SECONDS });
        const b = await load({ ...bareJob, seconds: SECONDS });
        const s = await load({ ...serverJob, seconds: SECONDS });
        const ratio = s.rps / b.rps;
        const goal = GOALS[operation];
        const clean = s.non2xx + s.errors + s.timeouts === 0 && b.non2xx + b.errors + b.timeouts === 0;
        verdicts.push(clean && ratio >= goal);
        const target = operation === "reads" ? "reads `GET /v1/secret/data/bench/<n>`" : "writes `POST /v1/secret/data/bench/<n>`";
        console.log(row(`bare \`GET /const\` (before ${operation})`, b, "", ""));
        const verdict = !clean ? "**not met** (failed requests)" : ratio >= goal ? "met" : "**not met**";
        console.log(row(target, s, `**${ratio.toFixed(2)}×**`, `≥ ${goal}×: ${verdict}`));
      }
      console.log("");
      await cleanups.pop()(); // server.close()
    }
  } finally {
    await cleanup();
    await bare.close();
    await worker.terminate();
  }
  if (verdicts.length > 0) console.log(verdicts.every(Boolean) ? "All goals met." : "Some goals were NOT met (see above).");
}

/**
 * Writes the 1,000 secrets (10 requests in flight) and checks one read. A 503 (a write that
 * lost too many serialization conflicts) is retried; returns how many were.
 */
async function prefill(url, token, body) {
  const headers = { "x-vault-token": token, "content-type": "application/json" };
  let next = 0;
  let retried = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < KEYS) {
        const path = secretPath(next++);
        for (let attempt = 1; ; attempt++) {
          const response = await fetch(`${url}${path}`, { method: "POST", headers, body });
          const text = await response.text();
          if (response.ok) break;
          if (response.status !== 503 || attempt === 20) throw new Error(`prefill: POST ${path}: ${response.status} ${text}`);
          retried++;
        }
      }
    }),
  );
  const check = await fetch(`${url}${secretPath(KEYS - 1)}`, { headers });
  const read = await check.json();
  if (!check.ok || read?.data?.data?.value !== JSON.parse(body).data.value) {
    throw new Error(`prefill: read-back of ${secretPath(KEYS - 1)} failed: ${check.status} ${JSON.stringify(read)}`);
  }
  return retried;
}

const fmt = (n) => Math.round(n).toLocaleString("en-US");

function row(target, r, ratio, goal) {
  const failed = r.non2xx > 0 ? `${fmt(r.non2xx)} (${r.failedStatuses})` : "0";
  return `| ${target} | ${fmt(r.rps)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${ratio} | ${goal} | ${failed} / ${r.errors + r.timeouts} |`;
}

// Last, so every top-level constant above is initialised first.
if (isMainThread) {
  await main();
} else {
  await loadGenerator();
}
