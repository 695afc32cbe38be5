import { SqliteBackend } from "@egide/storage-sqlite";
import { SealManager, barrier } from "./dist/index.js";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
const bare = SqliteBackend.open({ path: "/tmp/p8a.sqlite" });
const raw = SqliteBackend.open({ path: "/tmp/p8b.sqlite" });
const seal = await SealManager.open(raw);
const { shares } = await seal.initialize({ shares: 1, threshold: 1 });
await seal.unseal(shares[0]);
const b = barrier(raw, seal);
const V = randomBytes(256);
const ORDER = Int32Array.from({ length: 1 << 16 }, () => Math.floor(Math.random() * 10000));
for (let i = 0; i < 10000; i++) { await bare.put(`bench/f${i%100}/k${i}`, V); await b.put(`bench/f${i%100}/k${i}`, V); }
for (const mode of ["bare", "barrier", "bare", "barrier"]) {
  const N = 200000; const t = performance.now();
  for (let n = 0; n < N; n++) { const i = ORDER[n & 0xffff]; const k = `bench/f${i%100}/k${i}`;
    if (mode === "bare") await bare.get(k); else await b.get(k); }
  console.log(mode, ((performance.now() - t) * 1000 / N).toFixed(2), "µs/op");
}
