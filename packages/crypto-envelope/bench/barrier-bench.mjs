// `pnpm bench`: the cost of envelope encryption, as ratios measured in the same run.
//
// 1. sealValue / openValue per value size (64 B, 1 KiB, 4 KiB): operations per second of one
//    record encryption (fresh DEK, value encryption, DEK wrap) and one decryption.
// 2. The barrier over SQLite against the bare SQLite backend: two WAL files with the same
//    options, 10,000 keys of 256 bytes, get and put awaited one after another, in alternating
//    rounds (the order flips each round); the per-round median ratio is reported.
//    Goals: barrier get >= 0.5x and put >= 0.7x the bare backend.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareAlternating, formatCount as fmt, median, opsPerSecond, randomPicker } from "@egide/bench-timing";
import { SqliteBackend } from "@egide/storage-sqlite";
import { SealManager, barrier, systemRandom } from "../dist/index.js";
import { openValue, sealValue } from "../dist/internal.js";

const ROUNDS = Number(process.env.EGIDE_BENCH_ROUNDS ?? 5);
const ROUND_MS = 1000;
const WARMUP_MS = 300;
const KEYS = 10_000;
const VALUE = randomBytes(256);

const key = (i) => `bench/f${i % 100}/k${i}`;
const pick = randomPicker(KEYS);

async function recordOperations() {
  console.log("## Record encryption (one value record: fresh DEK, value encryption, DEK wrap)\n");
  console.log("| value size | seal ops/s | open ops/s | seal µs | open µs |");
  console.log("|---|---:|---:|---:|---:|");
  const ek = { version: 1, key: randomBytes(32) };
  const keyFor = () => ek.key;
  for (const size of [64, 1024, 4096]) {
    const plaintext = randomBytes(size);
    const record = sealValue("secret/data/app/config", plaintext, ek, systemRandom);
    const sealRate = median(
      await Promise.all(
        [0, 1, 2].map(() => opsPerSecond(() => sealValue("secret/data/app/config", plaintext, ek, systemRandom), ROUND_MS, { sync: true })),
      ),
    );
    const openRate = median(
      await Promise.all(
        [0, 1, 2].map(() => opsPerSecond(() => openValue("secret/data/app/config", record, keyFor), ROUND_MS, { sync: true })),
      ),
    );
    console.log(
      `| ${size < 1024 ? `${size} B` : `${size / 1024} KiB`} | ${fmt(sealRate)} | ${fmt(openRate)} | ${(1e6 / sealRate).toFixed(2)} | ${(1e6 / openRate).toFixed(2)} |`,
    );
  }
  console.log("");
}

/** A barrier over a fresh SQLite file, initialised 1-of-1 and unsealed. */
async function openBarrier(file, sealOptions) {
  const raw = SqliteBackend.open({ path: file });
  const seal = await SealManager.open(raw, sealOptions);
  const { shares } = await seal.initialize({ shares: 1, threshold: 1 });
  await seal.unseal(shares[0]);
  return { seal, backend: barrier(raw, seal) };
}

async function fill(backend) {
  for (let i = 0; i < KEYS; i += 500) {
    const batch = Array.from({ length: 500 }, (_, j) => key(i + j));
    await backend.transaction(async (tx) => {
      for (const k of batch) await tx.put(k, VALUE);
    });
  }
}

async function barrierOverSqlite(dir) {
  const bare = SqliteBackend.open({ path: join(dir, "bare.sqlite") });
  const { seal, backend: encrypted } = await openBarrier(join(dir, "barrier.sqlite"));
  // The same barrier without the DEK cache: every get unwraps its DEK (two GCM calls).
  const uncached = await openBarrier(join(dir, "uncached.sqlite"), { dekCacheEntries: 0 });
  for (const backend of [bare, encrypted, uncached.backend]) await fill(backend);

  console.log(`## Barrier over SQLite against the bare SQLite backend (${KEYS.toLocaleString("en-US")} keys of 256 bytes)\n`);
  console.log(`(median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms each, after a ${WARMUP_MS} ms warm-up)\n`);
  console.log("| operation | bare ops/s | barrier ops/s | ratio | goal |");
  console.log("|---|---:|---:|---:|---|");
  const rows = [
    ["get", (n) => bare.get(key(pick(n))), (n) => encrypted.get(key(pick(n))), 0.5],
    ["get, DEK cache disabled", (n) => bare.get(key(pick(n))), (n) => uncached.backend.get(key(pick(n))), null],
    ["put", (n) => bare.put(key(pick(n)), VALUE), (n) => encrypted.put(key(pick(n)), VALUE), 0.7],
    ["exists", (n) => bare.exists(key(pick(n))), (n) => encrypted.exists(key(pick(n))), null],
    ["list (folder of 100 keys)", (n) => bare.list(`bench/f${n % 100}/`), (n) => encrypted.list(`bench/f${n % 100}/`), null],
  ];
  const verdicts = [];
  for (const [name, onBare, onBarrier, goal] of rows) {
    const r = await compareAlternating(onBare, onBarrier, { rounds: ROUNDS, roundMs: ROUND_MS, warmupMs: WARMUP_MS });
    const met = goal === null ? "" : r.ratio >= goal ? `>= ${goal}x: met` : `>= ${goal}x: NOT met`;
    if (goal !== null) verdicts.push(r.ratio >= goal);
    console.log(`| ${name} | ${fmt(r.a)} | ${fmt(r.b)} | **${r.ratio.toFixed(2)}x** | ${met} |`);
  }
  console.log("");
  seal.seal();
  uncached.seal.seal();
  await encrypted.close();
  await uncached.backend.close();
  await bare.close();
  return verdicts.every(Boolean);
}

const dir = mkdtempSync(join(tmpdir(), "egide-barrier-bench-"));
try {
  console.log(`# @egide/crypto-envelope benchmark (Node.js ${process.version})\n`);
  await recordOperations();
  const met = await barrierOverSqlite(dir);
  console.log(met ? "All goals met." : "Some goals were NOT met (see above).");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
