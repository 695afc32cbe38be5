#!/usr/bin/env node
// `pnpm soak` (apps/server): a long run of mixed load against a real server process, with a fault
// every few minutes, reporting what an operator would watch. Not part of the test suite.
//
//   node scripts/soak.mjs [--minutes 30] [--fault-every 3] [--storage postgresql|sqlite] [--workers 8]
//
// The server is the built `dist/bin/egide-server.js` (build first: npx tsc -b), started as a child
// process with auto-unseal from a key file, on a throwaway PostgreSQL cluster of its own (initdb on
// a loopback port; never the machine's shared server) or on a SQLite file. Workers run a mix of
// KV v2 reads (70%), writes of unique values (20%), check-and-set increments of a few counters
// and token create + revoke (10%). Faults rotate: SIGKILL of the server and a restart; on
// PostgreSQL also an immediate shutdown and restart of the cluster, and pg_terminate_backend of
// every session. Every acknowledged write is remembered and read back at the end (lost writes,
// counter mismatches). Reported: RSS and open file descriptors of the server at start and end
// (and per minute), p50/p99 per minute, errors by class, recovery time after each fault.
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const args = {};
for (let index = 2; index < process.argv.length; index += 1) {
  const arg = process.argv[index];
  if (arg.startsWith("--")) args[arg.slice(2)] = process.argv[index + 1];
}
const MINUTES = Number(args.minutes ?? 30);
const FAULT_EVERY_MS = Number(args["fault-every"] ?? 3) * 60_000;
const STORAGE = args.storage ?? "postgresql";
const WORKERS = Number(args.workers ?? 8);
const BIN = fileURLToPath(new URL("../dist/bin/egide-server.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "egide-soak-"));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let cluster;
let server;
let url;
let rootToken;
let stopping = false;

async function call(method, path, { token = rootToken, body, timeoutMs = 10_000 } = {}) {
  const started = performance.now();
  try {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { ...(token ? { "x-vault-token": token } : {}), ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null, ms: performance.now() - started };
  } catch (error) {
    // The server is down (a fault): do not spin on refused connections.
    await sleep(20);
    return {
      status: 0,
      error: error?.name === "TimeoutError" ? "timeout" : (error?.cause?.code ?? error?.name ?? "error"),
      ms: performance.now() - started,
    };
  }
}

function startServerProcess(configPath) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "--config", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${out}`)), 30_000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /Egide listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    });
    child.stderr.on("data", (chunk) => (out += chunk));
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}):\n${out.slice(-2000)}`));
    });
  });
}

function processStats(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
    return { rssMiB: rssKiB / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return { rssMiB: Number.NaN, fds: Number.NaN };
  }
}

async function main() {
  let storageToml;
  if (STORAGE === "postgresql") {
    const { startThrowawayCluster } = await import("../../../tools/test-postgres/dist/index.js");
    cluster = await startThrowawayCluster();
    storageToml = `[storage]\ntype = "postgresql"\nhealth_interval = "1s"\n[storage.postgresql]\nhost = "127.0.0.1"\nport = ${cluster.port}\nusername = "postgres"\ndatabase = "postgres"\nschema = "egide_soak"\n`;
  } else {
    storageToml = `[storage]\ntype = "sqlite"\nhealth_interval = "1s"\n[storage.sqlite]\npath = ${JSON.stringify(join(dir, "egide.db"))}\n`;
  }
  const keyFile = join(dir, "unseal.key");
  const base = `log_level = "warn"\n${storageToml}[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`;
  const configPath = join(dir, "egide.toml");
  writeFileSync(configPath, base);
  ({ child: server, url } = await startServerProcess(configPath));
  const init = await call("PUT", "/v1/sys/init", { token: undefined, body: { secret_shares: 1, secret_threshold: 1 } });
  if (init.status !== 200) throw new Error(`init failed: ${JSON.stringify(init)}`);
  rootToken = init.body.root_token;
  writeFileSync(keyFile, init.body.keys_base64[0]);
  chmodSync(keyFile, 0o600);
  // From now on the server unseals itself at every start.
  writeFileSync(configPath, `${base}[seal]\nunseal_key_file = ${JSON.stringify(keyFile)}\n`);
  await restartServer("kill");

  const started = Date.now();
  const acknowledged = new Map(); // path -> { version, value }
  const counters = new Map(); // name -> acknowledged CAS writes
  const errors = new Map();
  const minutes = [];
  let minute = { latencies: [], ok: 0 };
  const faults = [];
  const stats = [{ at: 0, ...processStats(server.pid) }];
  let sequence = 0;

  const countError = (what) => errors.set(what, (errors.get(what) ?? 0) + 1);
  const record = (reply, okStatuses) => {
    if (okStatuses.includes(reply.status)) {
      minute.latencies.push(reply.ms);
      minute.ok += 1;
      return true;
    }
    countError(reply.status === 0 ? `network: ${reply.error}` : `HTTP ${reply.status}`);
    return false;
  };

  async function worker(id) {
    while (!stopping) {
      const roll = Math.random();
      if (roll < 0.7 && acknowledged.size > 0) {
        const keys = [...acknowledged.keys()];
        const path = keys[Math.floor(Math.random() * keys.length)];
        record(await call("GET", `/v1/secret/data/${path}`), [200]);
      } else if (roll < 0.9 || acknowledged.size === 0) {
        const path = `soak/w${id}/${sequence++}`;
        const value = `${path}-${Math.random().toString(36).slice(2)}`;
        const reply = await call("POST", `/v1/secret/data/${path}`, { body: { data: { value } } });
        if (record(reply, [200])) acknowledged.set(path, { version: reply.body.data.version, value });
      } else if (roll < 0.95) {
        const name = `counter-${id % 3}`;
        const read = await call("GET", `/v1/secret/data/soak-counters/${name}`);
        const version = read.status === 200 ? read.body.data.metadata.version : 0;
        const reply = await call("POST", `/v1/secret/data/soak-counters/${name}`, {
          body: { data: { n: version + 1 }, options: { cas: version } },
        });
        if (reply.status === 400) continue; // a lost CAS race: expected
        if (record(reply, [200])) counters.set(name, (counters.get(name) ?? 0) + 1);
      } else {
        const created = await call("POST", "/v1/auth/token/create", { body: { policies: ["default"], ttl: "1h" } });
        if (record(created, [200]))
          record(await call("POST", "/v1/auth/token/revoke", { body: { token: created.body.auth.client_token } }), [204]);
      }
    }
  }

  async function restartServer(kind) {
    const faultAt = performance.now();
    if (kind === "kill") {
      const exited = new Promise((resolve) => server.once("exit", resolve));
      server.kill("SIGKILL");
      await exited;
      ({ child: server, url } = await startServerProcess(configPath));
    } else if (kind === "cluster-restart") {
      cluster.stop("immediate");
      await sleep(2000);
      cluster.start();
    } else if (kind === "terminate-backends") {
      const pg = (await import("pg")).default;
      const client = new pg.Client({ host: "127.0.0.1", port: cluster.port, user: "postgres", database: "postgres" });
      await client.connect();
      await client.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
      );
      await client.end();
    }
    // Recovered: a write and a read succeed again.
    for (;;) {
      const probe = await call("POST", "/v1/secret/data/soak-probe", { body: { data: { at: Date.now() } }, timeoutMs: 2000 });
      if (probe.status === 200) break;
      await sleep(50);
    }
    return performance.now() - faultAt;
  }

  const kinds = STORAGE === "postgresql" ? ["kill", "cluster-restart", "terminate-backends"] : ["kill"];
  const running = Array.from({ length: WORKERS }, (_, id) => worker(id));
  let nextFault = Date.now() + FAULT_EVERY_MS;
  let nextMinute = Date.now() + 60_000;
  while (Date.now() - started < MINUTES * 60_000) {
    await sleep(250);
    if (Date.now() >= nextMinute) {
      minutes.push(minute);
      stats.push({ at: minutes.length, ...processStats(server.pid) });
      minute = { latencies: [], ok: 0 };
      nextMinute += 60_000;
    }
    if (Date.now() >= nextFault) {
      const kind = kinds[faults.length % kinds.length];
      const recoveryMs = await restartServer(kind);
      faults.push({ atMinute: ((Date.now() - started) / 60_000).toFixed(1), kind, recoveryMs: Math.round(recoveryMs) });
      nextFault = Date.now() + FAULT_EVERY_MS;
    }
  }
  stopping = true;
  await Promise.all(running);
  minutes.push(minute);
  stats.push({ at: "end", ...processStats(server.pid) });

  // Verification: every acknowledged write at its version, every counter at its count.
  let lost = 0;
  let mismatched = 0;
  for (const [path, { version, value }] of acknowledged) {
    const reply = await call("GET", `/v1/secret/data/${path}?version=${version}`);
    if (reply.status !== 200) lost += 1;
    else if (reply.body.data.data.value !== value) mismatched += 1;
  }
  let counterMismatches = 0;
  for (const [name, count] of counters) {
    const reply = await call("GET", `/v1/secret/data/soak-counters/${name}`);
    if (reply.status !== 200 || reply.body.data.data.n !== count || reply.body.data.metadata.version !== count) counterMismatches += 1;
  }

  const percentile = (values, p) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  };
  console.log(`# Soak: ${MINUTES} min on ${STORAGE}, ${WORKERS} workers, a fault every ${FAULT_EVERY_MS / 60_000} min\n`);
  console.log("| minute | ok requests | p50 ms | p99 ms | server RSS MiB | open fds |");
  console.log("|---:|---:|---:|---:|---:|---:|");
  minutes.forEach((m, index) => {
    const s = stats[index + 1] ?? {};
    console.log(
      `| ${index + 1} | ${m.ok} | ${percentile(m.latencies, 50).toFixed(1)} | ${percentile(m.latencies, 99).toFixed(1)} | ${s.rssMiB?.toFixed(0)} | ${s.fds} |`,
    );
  });
  console.log(
    `\nServer at start: RSS ${stats[0].rssMiB.toFixed(0)} MiB, ${stats[0].fds} fds; at the end: RSS ${stats.at(-1).rssMiB.toFixed(0)} MiB, ${stats.at(-1).fds} fds (the RSS of a restarted process starts over).`,
  );
  console.log("\nFaults:");
  for (const fault of faults) console.log(`- minute ${fault.atMinute}: ${fault.kind}, writes again after ${fault.recoveryMs} ms`);
  console.log("\nErrors by class (during faults, expected: 503s and refused connections):");
  for (const [what, count] of [...errors].sort((a, b) => b[1] - a[1])) console.log(`- ${what}: ${count}`);
  console.log(
    `\nAcknowledged writes: ${acknowledged.size}; lost: ${lost}; mismatched: ${mismatched}; CAS counters: ${[...counters.values()].reduce((a, b) => a + b, 0)} acknowledged increments over ${counters.size} counters, ${counterMismatches} mismatched.`,
  );
  return lost + mismatched + counterMismatches;
}

let failures = 1;
try {
  failures = await main();
} catch (error) {
  console.error(error);
} finally {
  stopping = true;
  server?.kill("SIGKILL");
  cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failures === 0 ? 0 : 1);
