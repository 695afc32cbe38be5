// `pnpm bench`: what recording metrics costs per storage operation. The metrics decorator
// over SQLite against the bare SQLite backend on a second file with the same options, in the
// same run: 10,000 keys of 256 bytes, calls awaited one after another, alternating rounds
// (the order flips each round), per-round median ratio, and the overhead in µs per operation.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareAlternating, formatCount as fmt, randomPicker } from "@egide/bench-timing";
import { Registry } from "prom-client";
import { SqliteBackend } from "@egide/storage-sqlite";
import { withMetrics } from "../dist/index.js";

const ROUNDS = Number(process.env.EGIDE_BENCH_ROUNDS ?? 5);
const ROUND_MS = 1000;
const WARMUP_MS = 300;
const KEYS = 10_000;
const VALUE = randomBytes(256);
const key = (i) => `bench/f${i % 100}/k${i}`;
const pick = randomPicker(KEYS);

const dir = mkdtempSync(join(tmpdir(), "egide-metrics-bench-"));
try {
  const bare = SqliteBackend.open({ path: join(dir, "bare.sqlite") });
  const registry = new Registry();
  const metered = withMetrics(SqliteBackend.open({ path: join(dir, "metered.sqlite") }), { registry });
  for (const backend of [bare, metered]) {
    for (let i = 0; i < KEYS; i += 500) {
      await backend.transaction(async (tx) => {
        for (let j = i; j < i + 500; j++) await tx.put(key(j), VALUE);
      });
    }
  }
  console.log(`# @egide/storage-metrics benchmark (Node.js ${process.version})\n`);
  console.log(`withMetrics over SQLite against the bare SQLite backend, ${KEYS.toLocaleString("en-US")} keys of 256 bytes`);
  console.log(`(median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms each, after a ${WARMUP_MS} ms warm-up)\n`);
  console.log("| operation | bare ops/s | with metrics ops/s | ratio | overhead per operation |");
  console.log("|---|---:|---:|---:|---:|");
  const rows = [
    ["get", (n) => bare.get(key(pick(n))), (n) => metered.get(key(pick(n)))],
    ["put", (n) => bare.put(key(pick(n)), VALUE), (n) => metered.put(key(pick(n)), VALUE)],
    ["exists", (n) => bare.exists(key(pick(n))), (n) => metered.exists(key(pick(n)))],
    ["list (folder of 100 keys)", (n) => bare.list(`bench/f${n % 100}/`), (n) => metered.list(`bench/f${n % 100}/`)],
  ];
  for (const [name, onBare, onMetered] of rows) {
    const r = await compareAlternating(onBare, onMetered, { rounds: ROUNDS, roundMs: ROUND_MS, warmupMs: WARMUP_MS });
    const overheadUs = 1e6 / r.b - 1e6 / r.a;
    console.log(`| ${name} | ${fmt(r.a)} | ${fmt(r.b)} | **${r.ratio.toFixed(2)}x** | ${overheadUs.toFixed(2)} µs |`);
  }
  const text = await registry.metrics();
  const getCount = /egide_storage_operations_total\{backend="sqlite",operation="get"\} (\d+)/.exec(text)?.[1];
  console.log(`\n(egide_storage_operations_total for get after the run: ${getCount})`);
  await bare.close();
  await metered.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
