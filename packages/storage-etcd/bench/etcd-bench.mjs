// `pnpm bench`: the etcd backend (built dist) against the raw `etcd3` client on the same etcd, in
// the same run, as ratios; then a demonstration that `list` costs O(children) round trips, not
// O(keys under or beside the prefix).
//
// The bench starts its own one-member etcd (Debian's etcd-server, through @egide/test-etcd) on
// free loopback ports, with its data in a temporary directory that is deleted at the end.
//
// Point operations run with 1 and with 32 operations in flight (that many async workers, each
// awaiting one call after another, for a fixed time), in alternating raw/backend rounds (the
// order flips each round); the per-round medians are reported.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { formatCount as fmt, median, randomPicker, timeConcurrent } from "@egide/bench-timing";
import { startEtcd } from "@egide/test-etcd";
import { Etcd3, KVClient } from "etcd3";
import { EtcdBackend } from "../dist/index.js";

const ROUNDS = Number(process.env.EGIDE_BENCH_ROUNDS || 9);
const ROUND_MS = Number(process.env.EGIDE_BENCH_ROUND_MS || 1500);
const WARMUP_MS = 300;
const CONCURRENCY = [1, 32];
const KEYS = 10_000;
const VALUE = randomBytes(256);
const POINT_GOAL = 0.9;
const OTHERS = 100_000;
const PREFIX = "bench/";

const key = (i) => `point/f${i % 100}/k${i}`;
const pick = randomPicker(KEYS);

// Range requests and the keys they return, counted on the client (both sides go through KVClient).
let ranges = 0;
let rangeKeys = 0;
const range = KVClient.prototype.range;
KVClient.prototype.range = async function countedRange(...args) {
  ranges++;
  const response = await range.apply(this, args);
  rangeKeys += response.kvs.length;
  return response;
};

async function compare(raw, backend, concurrency) {
  await timeConcurrent(raw, WARMUP_MS, concurrency);
  await timeConcurrent(backend, WARMUP_MS, concurrency);
  const rates = { raw: [], backend: [] };
  const cpu = { raw: [], backend: [] };
  const ratios = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of round % 2 === 0 ? ["raw", "backend"] : ["backend", "raw"]) {
      const result = await timeConcurrent(side === "raw" ? raw : backend, ROUND_MS, concurrency);
      rates[side].push(result.rate);
      cpu[side].push(result.cpu);
    }
    ratios.push(rates.backend[round] / rates.raw[round]);
  }
  return {
    raw: median(rates.raw),
    backend: median(rates.backend),
    ratio: median(ratios),
    cpu: { raw: median(cpu.raw), backend: median(cpu.backend) },
  };
}

/** Puts `entries` ([key, value] with full etcd keys) with the raw client, 100 a transaction, 8 transactions in flight. */
async function seed(client, entries) {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const start = next;
      next += 100;
      if (start >= entries.length) return;
      const batch = entries.slice(start, start + 100);
      await client.kv.txn({ success: batch.map(([k, v]) => ({ request_put: { key: Buffer.from(k), value: v } })) });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/**
 * A raw put shaped as the adapter's at-most-once write: one Txn that compares a witness slot of
 * the caller's own (one per caller in flight, as the adapter's) and puts the key and the slot.
 */
function guardedRawPut(client, rawKey) {
  const slots = [];
  return async (n) => {
    const slot = slots.pop() ?? { key: Buffer.from(`${PREFIX}meta/bench-witness/${n}-${slots.length}-${Math.random()}`), modRevision: "0" };
    try {
      const answer = await client.kv.txn({
        compare: [{ key: slot.key, target: "Mod", result: "Equal", mod_revision: slot.modRevision }],
        success: [
          { request_put: { key: rawKey(pick(n)), value: VALUE } },
          { request_put: { key: slot.key, value: Buffer.from(String(n)) } },
        ],
        failure: [],
      });
      if (!answer.succeeded) throw new Error("bench witness slot moved");
      slot.modRevision = answer.header.revision;
    } finally {
      slots.push(slot);
    }
  };
}

async function pointOperations(backend, client) {
  await seed(
    client,
    Array.from({ length: KEYS }, (_, i) => [`${PREFIX}kv/${key(i)}`, VALUE]),
  );
  if (!(await backend.get(key(7)))?.equals(VALUE)) throw new Error("preload failed");
  const rawKey = (i) => Buffer.from(`${PREFIX}kv/${key(i)}`);
  const rows = [
    ["get", (n) => client.kv.range({ key: rawKey(pick(n)) }), (n) => backend.get(key(pick(n)))],
    ["put", (n) => client.kv.put({ key: rawKey(pick(n)), value: VALUE }), (n) => backend.put(key(pick(n)), VALUE)],
    ["exists", (n) => client.kv.range({ key: rawKey(pick(n)), count_only: true }), (n) => backend.exists(key(pick(n)))],
    // Where put's time goes: the raw client sending the very request shape of the adapter's put
    // (a Txn comparing a witness slot's mod revision and putting the key and the slot), so the
    // ratio separates etcd's cost of that shape from the adapter's own code.
    ["put-as-txn", guardedRawPut(client, rawKey), (n) => backend.put(key(pick(n)), VALUE)],
  ];
  console.log(`Point operations: ${fmt(KEYS)} keys of 256 bytes; one etcd member (etcd-server 3.4) on loopback, fsync on`);
  console.log(
    `(median of ${ROUNDS} alternating rounds of ${ROUND_MS} ms each, after a ${WARMUP_MS} ms warm-up; "in flight" = concurrent callers)\n`,
  );
  const header = [
    "operation".padEnd(10),
    "in flight".padStart(9),
    "raw ops/s".padStart(12),
    "backend ops/s".padStart(15),
    "ratio".padStart(7),
    "CPU µs/op raw/backend".padStart(24),
  ].join("");
  console.log(header);
  console.log("-".repeat(header.length));
  const results = [];
  for (const [label, raw, ours] of rows) {
    for (const concurrency of CONCURRENCY) {
      const result = await compare(raw, ours, concurrency);
      results.push([`${label} @ ${concurrency}`, result.ratio]);
      console.log(
        [
          (concurrency === CONCURRENCY[0] ? label : "").padEnd(10),
          String(concurrency).padStart(9),
          fmt(result.raw).padStart(12),
          fmt(result.backend).padStart(15),
          `${result.ratio.toFixed(2)}×`.padStart(7),
          `${result.cpu.raw.toFixed(0)} / ${result.cpu.backend.toFixed(0)}`.padStart(24),
        ].join(""),
      );
    }
  }
  console.log(
    "\nraw = the etcd3 client's KV calls (kv.range / kv.put, default client options) on the same keys;" +
      "\nbackend = EtcdBackend.get / put / exists (validation, key encoding, deadlines, retries, change-feed bookkeeping).",
  );
  // The put-as-txn row explains put's figure; the goal is about the raw client's plain calls.
  const goalRows = results.filter(([label]) => !label.startsWith("put-as-txn"));
  const met = goalRows.every(([, ratio]) => ratio >= POINT_GOAL);
  const worst = goalRows.reduce((a, b) => (b[1] < a[1] ? b : a));
  console.log(
    `\ngoal ≥ ${POINT_GOAL}× for get/put/exists: ${met ? "MET" : "NOT MET"} (${goalRows.map(([l, r]) => `${l}: ${r.toFixed(2)}×`).join(", ")}; lowest ${worst[0]})`,
  );
}

async function listingCost(backend, client) {
  const started = performance.now();
  const small = Buffer.from("v");
  const entries = [];
  for (let i = 0; i < OTHERS; i++) entries.push([`${PREFIX}kv/other${i % 1000}/k${i}`, small]);
  for (let i = 0; i < 10; i++) entries.push([`${PREFIX}kv/target/k${i}`, small]);
  await seed(client, entries);
  const seedMs = performance.now() - started;

  const naive = async (prefix) => {
    const from = Buffer.from(`${PREFIX}kv/${prefix}`);
    const end = Buffer.from(from);
    end[end.length - 1] += 1;
    const response = await client.kv.range({ key: from, range_end: prefix === "" ? Buffer.from(`${PREFIX}kv0`) : end, keys_only: true });
    const children = [];
    for (const kv of response.kvs) {
      const rest = kv.key.toString("utf8").slice(PREFIX.length + 3 + prefix.length);
      const slash = rest.indexOf("/");
      const child = slash === -1 ? rest : rest.slice(0, slash + 1);
      if (children[children.length - 1] !== child) children.push(child);
    }
    return children;
  };
  const measure = async (label, fn, calls) => {
    await fn();
    const before = { ranges, rangeKeys };
    const times = [];
    let result;
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      result = await fn();
      times.push(performance.now() - t);
    }
    return {
      label,
      entries: result.length,
      requests: (ranges - before.ranges) / calls,
      keys: (rangeKeys - before.rangeKeys) / calls,
      ms: median(times),
    };
  };
  console.log(
    `\nList: ${fmt(OTHERS)} keys in 1,000 folders of 100 ("other0/" … "other999/") beside "target/" with 10 keys (seeded in ${(seedMs / 1000).toFixed(1)} s, 100 puts a transaction)\n`,
  );
  const rows = [
    await measure('backend list("target/")', () => backend.list("target/"), 200),
    await measure('naive   list("target/")', () => naive("target/"), 200),
    await measure('backend list("other7/")', () => backend.list("other7/"), 100),
    await measure('naive   list("other7/")', () => naive("other7/"), 100),
    await measure('backend list("")', () => backend.list(""), 5),
    await measure('naive   list("")', () => naive(""), 5),
  ];
  const header = [
    "listing".padEnd(26),
    "entries".padStart(8),
    "range requests".padStart(16),
    "keys read".padStart(11),
    "median".padStart(11),
  ].join("");
  console.log(header);
  console.log("-".repeat(header.length));
  for (const row of rows) {
    console.log(
      [
        row.label.padEnd(26),
        fmt(row.entries).padStart(8),
        row.requests.toFixed(0).padStart(16),
        fmt(row.keys).padStart(11),
        `${row.ms.toFixed(2)} ms`.padStart(11),
      ].join(""),
    );
  }
  console.log(
    '\nnaive = one keys-only range of the whole subtree, folded into children in JS (list("") reads every key of the store);' +
      "\nbackend = the skip-scan (storage-core listChildren, NETWORK_SEEK_BATCH): keys-only range requests of 256, then 32 after each folder jump.",
  );
}

const etcd = await startEtcd();
// Stopped by a signal (Ctrl-C, a timeout), the bench still removes its etcd member and data.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    void etcd.close().finally(() => process.exit(130));
  });
}
const backend = await EtcdBackend.open({ endpoints: etcd.endpoints, prefix: PREFIX });
const client = new Etcd3({ hosts: etcd.endpoints });
try {
  if (!process.argv.includes("--list-only")) await pointOperations(backend, client);
  if (!process.argv.includes("--point-only")) await listingCost(backend, client);
} finally {
  client.close();
  await backend.close();
  await etcd.close();
}
