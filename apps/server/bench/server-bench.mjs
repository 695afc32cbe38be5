// `pnpm bench`: the server end to end over HTTP on loopback, against a bare Fastify route in the
// same run, as ratios; with the storage operations each request costs and the cache's hit ratio.
//
// Storage, per backend: a SQLite file in a temporary directory (removed at the end), then a
// throwaway PostgreSQL database (`egide_bench_<random>` on PGHOST / PGPORT / PGUSER / PGPASSWORD,
// or 127.0.0.1:5432 as postgres (trust); dropped WITH (FORCE) at the end, even when the run fails
// or is interrupted (SIGINT), after every server on it has been closed or its thread ended). The
// first server of a backend (built dist, `startServer` in-process, log level "silent", audit on,
// default `[cache]`) initialises the installation 1-of-1, unsealed, and writes the secrets; every
// later server on that storage is unsealed with the key (`PUT /v1/sys/unseal`), which is kept in
// memory until the backend is done and then zeroed. The bare route is a separate minimal
// `Fastify({ logger: false })` app with `GET /const` -> {"ok":true}, in the main thread.
//
// Load: autocannon's programmatic API in a worker thread (so it does not share a server's event
// loop), 10 connections in all, no pipelining, for EGIDE_BENCH_SECONDS (default 10) per
// measurement, each target warmed up for 2 s first.
//   - reads:  GET  /v1/secret/data/bench/<n> with X-Vault-Token (the root token), n rotating
//             over 1,000 secrets of ~200 bytes written beforehand. Before the warm-up every
//             secret is read once on each server measured, so its cache holds them all (writes
//             measured earlier invalidated what they wrote; a server just started holds nothing).
//   - writes: POST /v1/secret/data/bench/<n> with a JSON body of ~200 bytes, n rotating over
//             the same 1,000 paths (consecutive requests hit different paths). Each write adds a
//             version (KV v2, default mount options); once a key has more than 10 versions (the
//             default max_versions) each write also deletes the oldest, so write rows measured
//             later in a run (after ~9,000 writes) show one `delete` per request more.
// req/s is the mean of autocannon's per-second samples counting 2xx responses only (summed over
// the instances when there are several); p50 / p99 come from every 2xx response's own latency
// (autocannon's histogram rounds to whole milliseconds).
//
// Storage operations per request and the cache hit ratio: `GET /v1/sys/metrics?format=prometheus`
// (root token) is scraped on every server measured right before its measurement and again 250 ms
// after the load stops (so requests still in flight finish), never during the load. Operations
// per request = the increase of `egide_storage_operations_total` (summed over its `backend`
// label) / the responses autocannon completed (its `totalCompletedRequests`, any status); then
// the same by the `operation` label (get, get_many, put (a putMany counts as one), delete,
// transaction, audit_append (one per audit batch outside transactions, one per mutation inside
// its transaction), health, ...). Operations inside a transaction count under their own label
// once per attempt, and the transaction once as `transaction`, so in-transaction operations
// above `transaction` are retried attempts (serialization conflicts). The hit ratio = the increase
// of `egide_cache_hits_total` / (hits + `egide_cache_misses_total` + `egide_cache_bypassed_total`):
// the share of the reads through the storage cache answered from memory, with those reads per
// request (a hit or a miss counts per key, a bypass per call; transactions never read the
// cache). The deltas also hold the scrape's own operations (its audit record) and the health
// probe's (every 5 s); the run prints what one scrape costs, negligible against the requests.
//
// Scenarios (EGIDE_BENCH_SCENARIOS, default "main,cache-disabled,instances"), in that order:
//   - main: the first server (main thread). Right before each server measurement the bare route
//     is measured, so both see the same machine state; the ratio is server req/s / bare req/s.
//     Goals, per backend: SQLite reads >= 0.3x and writes >= 0.1x, PostgreSQL reads >= 0.12x
//     and writes >= 0.05x the bare route; a measurement with any failed request misses its goal.
//   - cache-disabled: the first server is closed and another started (main thread) on the same
//     storage with `[cache] disable = true` (checked in `GET /v1/sys/health`), and reads and
//     writes are measured again the same way, bare route first, in the same table (rows
//     "reads (cache disabled)", ...); no goal.
//   - instances (PostgreSQL only): 1, then 2, then 3 server instances on the one database and
//     schema, each `startServer` (default `[cache]`) in a worker thread of its own (its own event
//     loop, as separate processes would have), added one at a time and kept. autocannon runs one
//     instance of its own per server, all at once in the one load worker, with the 10 connections
//     split between them (10; 5 + 5; 4 + 3 + 3) and one rotating n shared by all; the table gives
//     the summed req/s, each instance's, its ratio to 1 instance, p50 / p99 over all responses,
//     and operations per request and hit ratio summed over the instances. On 2 cores this shows
//     the database's share of a request's cost (and cross-instance invalidation's), not scale-out.
//
// EGIDE_BENCH_BACKENDS (default "sqlite,postgresql"), EGIDE_BENCH_OPERATIONS (default
// "reads,writes") and EGIDE_BENCH_SCENARIOS narrow the run, e.g. for a profile:
// EGIDE_BENCH_BACKENDS=sqlite EGIDE_BENCH_OPERATIONS=reads EGIDE_BENCH_SCENARIOS=main node --cpu-prof bench/server-bench.mjs
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

const SECONDS = Number(process.env.EGIDE_BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = 2;
const CONNECTIONS = 10;
const KEYS = 1000;
/** Settling time after a measurement before the closing scrape, so in-flight requests finish. */
const SETTLE_MS = 250;
const GOALS = {
  sqlite: { reads: 0.3, writes: 0.1 },
  postgresql: { reads: 0.12, writes: 0.05 },
};
const KNOWN_SCENARIOS = ["main", "cache-disabled", "instances"];
const INSTANCE_COUNTS = [1, 2, 3];
const list = (value, fallback) =>
  (value ?? fallback)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
const BACKENDS = list(process.env.EGIDE_BENCH_BACKENDS, "sqlite,postgresql");
const OPERATIONS = list(process.env.EGIDE_BENCH_OPERATIONS, "reads,writes");
const SCENARIOS = list(process.env.EGIDE_BENCH_SCENARIOS, KNOWN_SCENARIOS.join(","));
/** The `operation` label values, in the order they are printed. */
const OPERATION_LABELS = [
  "get",
  "get_many",
  "exists",
  "list",
  "list_page",
  "scan",
  "put",
  "delete",
  "transaction",
  "audit_append",
  "audit_query",
  "health",
];
/** Printed in every breakdown even at zero: whether a request reads storage at all. */
const ALWAYS_SHOWN = new Set(["get", "get_many", "transaction"]);

const secretPath = (n) => `/v1/secret/data/bench/${n % KEYS}`;

// ---------------------------------------------------------------------------------------------
// The load generator (worker thread): runs one measurement per message, one autocannon per target.

async function loadGenerator() {
  const { default: autocannon } = await import("autocannon");
  let next = 0; // the rotating secret index, shared by all connections and targets
  parentPort.on("message", async (job) => {
    try {
      parentPort.postMessage({ result: await fire(autocannon, job, () => next++) });
    } catch (error) {
      parentPort.postMessage({ error: error?.stack ?? String(error) });
    }
  });
}

async function fire(autocannon, { targets, kind, seconds, token, body }, nextIndex) {
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
  const onResponse = (_client, status, _bytes, ms) => {
    if (status < 200 || status > 299) return; // counted in non2xx, like autocannon's histogram
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[count++] = ms;
  };
  const results = await Promise.all(
    targets.map(({ url, connections }) => {
      const instance = autocannon({ url, connections, pipelining: 1, duration: seconds, requests: [request] });
      instance.on("response", onResponse);
      return instance;
    }),
  );
  const sorted = latencies.subarray(0, count).sort();
  const at = (p) => (count === 0 ? Number.NaN : sorted[Math.min(count - 1, Math.floor((p / 100) * count))]);
  const sum = (pick) => results.reduce((total, result) => total + pick(result), 0);
  // autocannon does not aggregate in a worker thread (it takes the thread for one of its own
  // workers), so this is its "Req/Sec Avg" computed from the raw result: the mean of the
  // per-second samples, counting successful (2xx) responses only; summed over the targets.
  const perTarget = results.map((result) => result["2xx"] / result.samples);
  return {
    rps: perTarget.reduce((a, b) => a + b, 0),
    perTarget,
    /** Every response completed, whatever its status: the denominator of operations per request. */
    requests: sum((result) => result.totalCompletedRequests),
    p50: at(50),
    p99: at(99),
    non2xx: sum((result) => result.non2xx),
    errors: sum((result) => result.errors),
    timeouts: sum((result) => result.timeouts),
    // The non-2xx statuses seen, e.g. "503".
    failedStatuses: [...new Set(results.flatMap((result) => Object.keys(result.statusCodeStats ?? {})))]
      .filter((code) => !code.startsWith("2"))
      .join(", "),
  };
}

// ---------------------------------------------------------------------------------------------
// A server instance in a worker thread (the instances scenario): starts on the TOML it is given,
// reports its URL, and closes when told to.

async function serverInstance() {
  const { parseServerConfig, startServer } = await import("../dist/index.js");
  let server;
  parentPort.on("message", async (message) => {
    if (message !== "close") return;
    try {
      await server?.close();
      parentPort.postMessage({ closed: true });
    } catch (error) {
      parentPort.postMessage({ error: error?.stack ?? String(error) });
    }
  });
  try {
    server = await startServer({ config: parseServerConfig(workerData.toml) });
    parentPort.postMessage({ url: server.url });
  } catch (error) {
    parentPort.postMessage({ error: error?.stack ?? String(error) });
  }
}

/** Starts a server instance in a worker thread; resolves to its URL and a `close()`. */
function startWorkerServer(toml) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: "server", toml } });
  let pending;
  worker.on("message", (message) => pending?.(message));
  worker.on("error", (error) => pending?.({ error: error?.stack ?? String(error) }));
  worker.on("exit", (code) => pending?.({ error: `the server thread exited (code ${code})` }));
  const next = (timeoutMs) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending = undefined;
        reject(new Error(`the server thread did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      pending = (message) => {
        pending = undefined;
        clearTimeout(timer);
        if (message.error) reject(new Error(`server thread: ${message.error}`));
        else resolve(message);
      };
    });
  let closing;
  const close = () => {
    closing ??= (async () => {
      try {
        const closed = next(15_000);
        worker.postMessage("close");
        await closed;
      } finally {
        // Ended either way, so the process can exit and the database can be dropped.
        await worker.terminate();
      }
    })();
    return closing;
  };
  return next(30_000).then(
    ({ url }) => ({ url, close }),
    async (error) => {
      await worker.terminate();
      throw error;
    },
  );
}

// ---------------------------------------------------------------------------------------------
// The main thread: the servers, the measurements and the report.

async function main() {
  for (const backend of BACKENDS) {
    if (!(backend in GOALS)) throw new Error(`unknown backend ${JSON.stringify(backend)} in EGIDE_BENCH_BACKENDS (sqlite, postgresql)`);
  }
  for (const operation of OPERATIONS) {
    if (operation !== "reads" && operation !== "writes")
      throw new Error(`unknown operation ${JSON.stringify(operation)} in EGIDE_BENCH_OPERATIONS (reads, writes)`);
  }
  for (const scenario of SCENARIOS) {
    if (!KNOWN_SCENARIOS.includes(scenario))
      throw new Error(`unknown scenario ${JSON.stringify(scenario)} in EGIDE_BENCH_SCENARIOS (${KNOWN_SCENARIOS.join(", ")})`);
  }
  if (!(SECONDS > 0))
    throw new Error(`EGIDE_BENCH_SECONDS must be a positive number of seconds, got ${JSON.stringify(process.env.EGIDE_BENCH_SECONDS)}`);
  const { default: Fastify } = await import("fastify");
  const pg = (await import("pg")).default;
  const { parseServerConfig, startServer } = await import("../dist/index.js");

  const worker = new Worker(new URL(import.meta.url), { workerData: { role: "load" } });
  let pending;
  worker.on("message", (message) => pending?.(message));
  worker.on("error", (error) => pending?.({ error: error?.stack ?? String(error) }));
  worker.on("exit", (code) => pending?.({ error: `the worker exited (code ${code})` }));
  /** One measurement in the load worker. */
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
  /** Runs and forgets one cleanup pushed earlier, when its resource is done before the end. */
  const release = async (fn) => {
    const index = cleanups.lastIndexOf(fn);
    if (index >= 0) cleanups.splice(index, 1);
    await fn();
  };
  // Ctrl-C still closes the servers, drops the database and removes the temp files.
  process.once("SIGINT", () => {
    console.error("interrupted; cleaning up");
    cleanup().finally(() => process.exit(130));
  });

  const cpuList = cpus();
  console.log(`# @egide/server benchmark (Node.js ${process.version})\n`);
  console.log(
    `Machine: ${cpuList.length} cores (${cpuList[0]?.model.trim() ?? "unknown"}). The load generator (autocannon, one worker ` +
      `thread), the servers, the bare Fastify app and PostgreSQL all share these ${cpuList.length} cores, ` +
      "so every figure includes the client's own CPU cost: compare the ratios, not the absolute numbers.\n",
  );
  console.log(
    `autocannon: ${CONNECTIONS} connections, no pipelining, ${SECONDS} s per measurement after a ${WARMUP_SECONDS} s warm-up ` +
      `of each target; the bare route is measured right before each single-server measurement. Secrets: ` +
      `${KEYS.toLocaleString("en-US")} paths, values of ${value.length} bytes (${writeBody.length}-byte JSON body), each read ` +
      "once on the server before a read measurement so its cache holds them all; each write adds a KV v2 version, and past a " +
      "key's 10th version also deletes the oldest (the `delete` of later write rows). Audit on (a record per request). req/s " +
      "counts 2xx responses only; p50 / p99 are over those responses; the last column counts non-2xx responses (their " +
      "statuses) / connection errors and timeouts.\n",
  );
  console.log(
    "Storage operations per request: the increase of `egide_storage_operations_total` over the measurement (metrics scraped " +
      "before and after it, outside the load) / the responses completed, then by `operation` label. An operation inside a " +
      "transaction counts under its own label once per attempt and the transaction once as `transaction`, so in-transaction " +
      "operations above `transaction` are retried attempts; `audit_append` is one per audit batch, or one per mutation in its " +
      "transaction. Cache hit ratio: hits / (hits + misses + bypassed) of the storage cache over the measurement, with those " +
      "cache reads per request.\n",
  );
  console.log(`Scenarios: ${SCENARIOS.join(", ")}.\n`);

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
        // Pushed before any server, so it runs after every server on the database is closed.
        cleanups.push(() => admin(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
        storageToml =
          `[storage]\ntype = "postgresql"\n[storage.postgresql]\nhost = ${JSON.stringify(server.host)}\nport = ${server.port}\n` +
          `username = ${JSON.stringify(server.user)}\ndatabase = ${JSON.stringify(database)}\n` +
          (server.password ? 'password_env = "PGPASSWORD"\n' : "");
        label = `PostgreSQL (${server.host}:${server.port}, throwaway database ${database}, default pool options)`;
      }
      const serverToml = (cacheDisabled) =>
        `log_level = "silent"\n${storageToml}[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n` +
        (cacheDisabled ? "[cache]\ndisable = true\n" : "");

      /** A server in the main thread on this backend's storage; closed by the cleanups unless released first. */
      const startMainServer = async (cacheDisabled) => {
        const server = await startServer({ config: parseServerConfig(serverToml(cacheDisabled)) });
        const close = () => server.close();
        cleanups.push(close);
        return { server, close };
      };

      const first = await startMainServer(false);
      const { keys, rootToken } = await first.server.initialize({ shares: 1, threshold: 1 }, true);
      const zeroKeys = async () => {
        for (const key of keys) key.fill(0);
      };
      cleanups.push(zeroKeys);
      const retried = await prefill(first.server.url, rootToken, writeBody);
      const scrapeCost = await measureScrapeCost(first.server.url, rootToken);

      console.log(`## ${label}\n`);
      if (retried > 0)
        console.log(`(writing the ${KEYS.toLocaleString("en-US")} secrets beforehand, ${retried} writes got a 503 and were retried)\n`);
      console.log(
        `Cache: ${await cacheState(first.server.url)}. One metrics scrape costs ${fmtOps(scrapeCost)} storage operations ` +
          "(counted in each measurement's delta).\n",
      );

      const singleServerScenarios = SCENARIOS.filter((s) => s === "main" || s === "cache-disabled");
      if (singleServerScenarios.length > 0 && OPERATIONS.length > 0) {
        console.log(
          "| target | req/s (mean) | p50 ms | p99 ms | ratio to bare | goal | storage ops / request (by operation) | cache hit ratio (cache reads / request) | non-2xx / errors |",
        );
        console.log("|---|---:|---:|---:|---:|---|---|---|---:|");
      }
      /** The bare route, then `url`'s server, for each operation, as rows. */
      const measureSingle = async (url, suffix, withGoals) => {
        for (const operation of OPERATIONS) {
          const serverJob = { targets: [{ url, connections: CONNECTIONS }], kind: operation, token: rootToken, body: writeBody };
          const bareJob = { targets: [{ url: bareUrl, connections: CONNECTIONS }], kind: "bare" };
          if (operation === "reads") await readAll(url, rootToken);
          await load({ ...serverJob, seconds: WARMUP_SECONDS });
          await load({ ...bareJob, seconds: WARMUP_SECONDS });
          const b = await load({ ...bareJob, seconds: SECONDS });
          const before = await scrape(url, rootToken);
          const s = await load({ ...serverJob, seconds: SECONDS });
          await sleep(SETTLE_MS);
          const storage = delta(before, await scrape(url, rootToken));
          const ratio = s.rps / b.rps;
          const clean = s.non2xx + s.errors + s.timeouts === 0 && b.non2xx + b.errors + b.timeouts === 0;
          let goalText = "—";
          if (withGoals) {
            const goal = GOALS[backend][operation];
            verdicts.push(clean && ratio >= goal);
            const verdict = !clean ? "**not met** (failed requests)" : ratio >= goal ? "met" : "**not met**";
            goalText = `≥ ${goal}×: ${verdict}`;
          }
          const target =
            (operation === "reads" ? "reads `GET /v1/secret/data/bench/<n>`" : "writes `POST /v1/secret/data/bench/<n>`") + suffix;
          console.log(row(`bare \`GET /const\` (before ${operation}${suffix})`, b, "", "", "", ""));
          console.log(row(target, s, `**${ratio.toFixed(2)}×**`, goalText, opsCell(storage, s.requests), cacheCell(storage, s.requests)));
        }
      };

      if (SCENARIOS.includes("main")) await measureSingle(first.server.url, "", true);
      await release(first.close);

      if (SCENARIOS.includes("cache-disabled")) {
        const off = await startMainServer(true);
        await unseal(off.server.url, keys);
        const state = await cacheState(off.server.url);
        if (!state.startsWith("enabled false")) throw new Error(`cache-disabled: the restarted server reports cache ${state}`);
        await measureSingle(off.server.url, " (cache disabled)", false);
        await release(off.close);
      }
      if (singleServerScenarios.length > 0 && OPERATIONS.length > 0) console.log("");

      if (SCENARIOS.includes("instances") && backend !== "postgresql") console.log("(instances: PostgreSQL only)\n");
      if (SCENARIOS.includes("instances") && backend === "postgresql" && OPERATIONS.length > 0) {
        console.log(`### ${INSTANCE_COUNTS.join(", ")} server instances on the one database\n`);
        console.log(
          "Each instance is `startServer` in a worker thread of its own (default `[cache]`), on the same database and schema; " +
            "autocannon runs against all of them at once with the 10 connections split between them, and req/s is the sum. " +
            `This machine has ${cpuList.length} cores shared by the instances, the load generator and PostgreSQL, so this ` +
            "shows how much of a request's cost is the database's (and the cost of cross-instance cache invalidation), not " +
            "scale-out.\n",
        );
        console.log(
          "| target | instances | connections | req/s (sum) | per instance | p50 ms | p99 ms | ratio to 1 instance | storage ops / request (by operation) | cache hit ratio (cache reads / request) | non-2xx / errors |",
        );
        console.log("|---|---:|---|---:|---|---:|---:|---:|---|---|---:|");
        const instances = [];
        const baseline = {};
        for (const count of INSTANCE_COUNTS) {
          while (instances.length < count) {
            const instance = await startWorkerServer(serverToml(false));
            cleanups.push(instance.close);
            await unseal(instance.url, keys);
            instances.push(instance);
          }
          const split = splitConnections(CONNECTIONS, count);
          const targets = instances.map((instance, index) => ({ url: instance.url, connections: split[index] }));
          for (const operation of OPERATIONS) {
            const job = { targets, kind: operation, token: rootToken, body: writeBody };
            if (operation === "reads") await Promise.all(instances.map((instance) => readAll(instance.url, rootToken)));
            await load({ ...job, seconds: WARMUP_SECONDS });
            const before = await Promise.all(instances.map((instance) => scrape(instance.url, rootToken)));
            const r = await load({ ...job, seconds: SECONDS });
            await sleep(SETTLE_MS);
            const after = await Promise.all(instances.map((instance) => scrape(instance.url, rootToken)));
            const storage = before.map((b, index) => delta(b, after[index])).reduce(addCounts);
            baseline[operation] ??= r.rps;
            const ratio = `${(r.rps / baseline[operation]).toFixed(2)}×`;
            const failed = r.non2xx > 0 ? `${fmt(r.non2xx)} (${r.failedStatuses})` : "0";
            console.log(
              `| ${operation} | ${count} | ${split.join(" + ")} | ${fmt(r.rps)} | ${r.perTarget.map(fmt).join(" + ")} | ` +
                `${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${ratio} | ${opsCell(storage, r.requests)} | ` +
                `${cacheCell(storage, r.requests)} | ${failed} / ${r.errors + r.timeouts} |`,
            );
          }
        }
        console.log("");
        for (const instance of instances.reverse()) await release(instance.close);
      }
      await release(zeroKeys);
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

/**
 * Reads each of the 1,000 secrets once (10 requests in flight), so that a server's cache holds
 * them all before a read measurement whatever ran before it (the writes invalidate what they
 * write; an instance just started holds nothing), rather than filling up during the load.
 */
async function readAll(url, token) {
  const headers = { "x-vault-token": token };
  let next = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < KEYS) {
        const path = secretPath(next++);
        const response = await fetch(`${url}${path}`, { headers });
        const text = await response.text();
        if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${text}`);
      }
    }),
  );
}

/** Unseals the server at `url` with the shares, and checks that it is. */
async function unseal(url, keys) {
  let status;
  for (const key of keys) {
    const response = await fetch(`${url}/v1/sys/unseal`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: key.toString("hex") }),
    });
    status = await response.json();
    if (!response.ok) throw new Error(`unseal ${url}: ${response.status} ${JSON.stringify(status)}`);
  }
  if (status?.sealed !== false) throw new Error(`unseal ${url}: still sealed: ${JSON.stringify(status)}`);
}

/** The cache part of `GET /v1/sys/health`, e.g. "enabled true, feed live, serving true". */
async function cacheState(url) {
  // The feed goes live asynchronously after the start (PostgreSQL: LISTEN); wait up to 5 s for it.
  let cache;
  for (let waited = 0; waited <= 5000; waited += 100) {
    const response = await fetch(`${url}/v1/sys/health`);
    cache = (await response.json())?.cache;
    if (cache === undefined || cache.feed !== "not_live") break;
    await sleep(100);
  }
  if (cache === undefined) return "not reported";
  return `enabled ${cache.enabled}, feed ${cache.feed}, serving ${cache.serving}`;
}

/**
 * The storage and cache counters of one server, from its Prometheus text:
 * `{ operations: Map<operation, count>, hits, misses, bypassed }`.
 */
async function scrape(url, token) {
  const response = await fetch(`${url}/v1/sys/metrics?format=prometheus`, { headers: { "x-vault-token": token } });
  const text = await response.text();
  if (!response.ok) throw new Error(`scrape ${url}: ${response.status} ${text.slice(0, 200)}`);
  const counts = { operations: new Map(), hits: 0, misses: 0, bypassed: 0 };
  for (const line of text.split("\n")) {
    if (line.startsWith("egide_storage_operations_total{")) {
      const match = /^egide_storage_operations_total\{([^}]*)\}\s+(\S+)/.exec(line);
      const operation = match && /(?:^|,)operation="([^"]*)"/.exec(match[1])?.[1];
      if (!operation) throw new Error(`scrape ${url}: cannot read ${JSON.stringify(line)}`);
      counts.operations.set(operation, (counts.operations.get(operation) ?? 0) + Number(match[2]));
    } else {
      const match = /^(egide_cache_(?:hits|misses|bypassed)_total)\s+(\S+)/.exec(line);
      if (match?.[1] === "egide_cache_hits_total") counts.hits = Number(match[2]);
      else if (match?.[1] === "egide_cache_misses_total") counts.misses = Number(match[2]);
      else if (match?.[1] === "egide_cache_bypassed_total") counts.bypassed = Number(match[2]);
    }
  }
  if (counts.operations.size === 0) throw new Error(`scrape ${url}: no egide_storage_operations_total in the metrics`);
  return counts;
}

/** `after - before`, counter by counter. */
function delta(before, after) {
  const operations = new Map();
  for (const [operation, count] of after.operations) operations.set(operation, count - (before.operations.get(operation) ?? 0));
  return {
    operations,
    hits: after.hits - before.hits,
    misses: after.misses - before.misses,
    bypassed: after.bypassed - before.bypassed,
  };
}

function addCounts(a, b) {
  const operations = new Map(a.operations);
  for (const [operation, count] of b.operations) operations.set(operation, (operations.get(operation) ?? 0) + count);
  return { operations, hits: a.hits + b.hits, misses: a.misses + b.misses, bypassed: a.bypassed + b.bypassed };
}

/** The storage operations of one scrape: two scrapes back to back, the second's increase. */
async function measureScrapeCost(url, token) {
  await sleep(SETTLE_MS);
  const first = await scrape(url, token);
  await sleep(SETTLE_MS);
  const second = await scrape(url, token);
  return [...delta(first, second).operations.values()].reduce((a, b) => a + b, 0);
}

/** 10 connections over `count` targets: 10; 5 + 5; 4 + 3 + 3. */
function splitConnections(total, count) {
  return Array.from({ length: count }, (_, index) => Math.floor(total / count) + (index < total % count ? 1 : 0));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const fmt = (n) => Math.round(n).toLocaleString("en-US");

/** A per-request figure: two decimals, "<0.01" for a small non-zero one. */
const perRequest = (count, requests) => {
  const value = count / requests;
  return value > 0 && value < 0.005 ? "<0.01" : value.toFixed(2);
};

const fmtOps = (n) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/** "**2.01**: get 0.00, get_many 0.00, transaction 1.00, audit_append 1.01". */
function opsCell(storage, requests) {
  if (!(requests > 0)) return "—";
  const total = [...storage.operations.values()].reduce((a, b) => a + b, 0);
  const labels = [...OPERATION_LABELS, ...[...storage.operations.keys()].filter((op) => !OPERATION_LABELS.includes(op))];
  const parts = labels
    .filter((op) => ALWAYS_SHOWN.has(op) || (storage.operations.get(op) ?? 0) > 0)
    .map((op) => `${op} ${perRequest(storage.operations.get(op) ?? 0, requests)}`);
  return `**${perRequest(total, requests)}**: ${parts.join(", ")}`;
}

/** "99.9 % (3.00)", or "— (bypassed 2.00)" when the cache answered nothing. */
function cacheCell(storage, requests) {
  if (!(requests > 0)) return "—";
  const reads = storage.hits + storage.misses + storage.bypassed;
  if (reads === 0) return "— (0.00)";
  const ratio = `${((100 * storage.hits) / reads).toFixed(1)} %`;
  const bypassed = storage.bypassed > 0 ? `, bypassed ${perRequest(storage.bypassed, requests)}` : "";
  return `${ratio} (${perRequest(reads, requests)}${bypassed})`;
}

function row(target, r, ratio, goal, ops, cache) {
  const failed = r.non2xx > 0 ? `${fmt(r.non2xx)} (${r.failedStatuses})` : "0";
  return `| ${target} | ${fmt(r.rps)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${ratio} | ${goal} | ${ops} | ${cache} | ${failed} / ${r.errors + r.timeouts} |`;
}

// Last, so every top-level constant above is initialised first.
if (isMainThread) {
  await main();
} else if (workerData?.role === "server") {
  await serverInstance();
} else {
  await loadGenerator();
}
