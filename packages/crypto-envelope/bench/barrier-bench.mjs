// `pnpm bench`: the cost of envelope encryption, as ratios measured in the same run.
//
// 1. sealValue / openValue per value size (64 B, 1 KiB, 4 KiB): operations per second of one
//    record encryption (fresh DEK, value encryption, DEK wrap) and one decryption.
// 2. The barrier over SQLite against the bare SQLite backend: two WAL files with the same
//    options, 10,000 keys of 256 bytes, get and put awaited one after another, in alternating
//    rounds (the order flips each round); the per-round median ratio is reported.
//    Goals: barrier get >= 0.5x and put >= 0.7x the bare backend.
// 3. The barrier's overhead against its own GCM calls: the barrier over an in-memory backend (a
//    Map), the Map backend alone, and the AES-256-GCM calls the barrier must make, done with
//    node:crypto directly (same value size, same keys, same per-value DEK work: for a get, one
//    decryption under the value's DEK, plus the DEK unwrap when the DEK cache is off; for a put,
//    56 random bytes for the DEK and two nonces, the value encrypted under the fresh DEK, and the
//    DEK wrapped under the encryption key), timed in alternating rounds. The barrier's overhead
//    is its time minus the Map's; goal: at most 1.2x the GCM calls alone.
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, randomFillSync } from "node:crypto";
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

/**
 * The cheapest backend a barrier can sit on: a Map, with only what barrier gets and puts
 * reach. Its own cost is measured alone and taken out of the barrier's.
 */
function mapBackend() {
  const entries = new Map();
  const unused = () => Promise.reject(new Error("not used by this bench"));
  return {
    type: "memory",
    get: (k) => Promise.resolve(entries.get(k) ?? null),
    put: (k, value) => {
      entries.set(k, value);
      return Promise.resolve();
    },
    delete: (k) => Promise.resolve(void entries.delete(k)),
    exists: (k) => Promise.resolve(entries.has(k)),
    list: unused,
    listPage: unused,
    scan: () => {
      throw new Error("not used by this bench");
    },
    transaction: unused,
    health: () => Promise.resolve({ status: "healthy", latencyMs: 0 }),
    close: () => Promise.resolve(),
  };
}

/**
 * What the GCM calls of the barrier work on, made with node:crypto directly for every bench key:
 * a DEK per value (as a KeyObject, as the DEK cache holds it, and as bytes), the value under it,
 * and the DEK wrapped under one encryption key; associated data of the barrier's lengths
 * (header and storage key for the wrap, format, type and storage key for the value).
 */
function gcmRecords(ek) {
  const records = [];
  for (let i = 0; i < KEYS; i++) {
    const keyBytes = Buffer.from(key(i), "utf8");
    const wrapAad = Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 1]), keyBytes]);
    const valueAad = Buffer.concat([Buffer.from([1, 1]), keyBytes]);
    const dek = randomBytes(32);
    const valueNonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", dek, valueNonce, { authTagLength: 16 });
    cipher.setAAD(valueAad);
    const ciphertext = cipher.update(VALUE);
    cipher.final();
    const valueTag = cipher.getAuthTag();
    const wrapNonce = randomBytes(12);
    const wrap = createCipheriv("aes-256-gcm", ek, wrapNonce, { authTagLength: 16 });
    wrap.setAAD(wrapAad);
    const wrappedDek = wrap.update(dek);
    wrap.final();
    const wrapTag = wrap.getAuthTag();
    records.push({ wrapAad, valueAad, dekObject: createSecretKey(dek), valueNonce, ciphertext, valueTag, wrapNonce, wrappedDek, wrapTag });
  }
  return records;
}

function gcmDecrypt(dek, nonce, aad, tag, ciphertext) {
  const decipher = createDecipheriv("aes-256-gcm", dek, nonce, { authTagLength: 16 });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plaintext = decipher.update(ciphertext);
  decipher.final();
  return plaintext;
}

function gcmEncrypt(k, nonce, aad, plaintext) {
  const cipher = createCipheriv("aes-256-gcm", k, nonce, { authTagLength: 16 });
  cipher.setAAD(aad);
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  return { ciphertext, tag: cipher.getAuthTag() };
}

/**
 * 56 random bytes per value (DEK, wrap nonce, value nonce) from the CSPRNG in 4 KiB refills,
 * handed out as views: the cheapest way to draw them, cheaper than the barrier's pool, which
 * copies each draw out and zeroes what it handed out.
 */
function randomDraws() {
  const pool = Buffer.allocUnsafe(56 * 73);
  let offset = pool.length;
  return () => {
    if (offset + 56 > pool.length) {
      randomFillSync(pool);
      offset = 0;
    }
    const draw = pool.subarray(offset, offset + 56);
    offset += 56;
    return draw;
  };
}

/**
 * `gcm`, `inner` and `barrier` timed in `ROUNDS` rounds whose order rotates, after a warm-up;
 * per round, the barrier's overhead is its time per operation minus the inner backend's.
 */
async function overheadRounds(gcm, inner, barrierOp) {
  const sides = [
    { op: gcm, sync: true },
    { op: inner, sync: false },
    { op: barrierOp, sync: false },
  ];
  for (const side of sides) await opsPerSecond(side.op, WARMUP_MS, { sync: side.sync });
  const micros = [[], [], []];
  const gross = [];
  const net = [];
  for (let round = 0; round < ROUNDS; round++) {
    const perOp = [0, 0, 0];
    for (let j = 0; j < 3; j++) {
      const which = (round + j) % 3;
      const side = sides[which];
      perOp[which] = 1e6 / (await opsPerSecond(side.op, ROUND_MS, { sync: side.sync }));
    }
    for (let which = 0; which < 3; which++) micros[which].push(perOp[which]);
    gross.push(perOp[2] / perOp[0]);
    net.push((perOp[2] - perOp[1]) / perOp[0]);
  }
  return { gcm: median(micros[0]), inner: median(micros[1]), barrier: median(micros[2]), gross: median(gross), net: median(net) };
}

async function barrierAgainstGcm() {
  const GOAL = 1.2;
  const open = async (sealOptions) => {
    // The keyring lives in SQLite (reservations are transactions); the values go to the Map.
    const keyStore = SqliteBackend.open({ path: ":memory:" });
    const seal = await SealManager.open(keyStore, sealOptions);
    const { shares } = await seal.initialize({ shares: 1, threshold: 1 });
    await seal.unseal(shares[0]);
    const inner = mapBackend();
    const b = barrier(inner, seal);
    for (let i = 0; i < KEYS; i++) await b.put(key(i), VALUE);
    // Every DEK in the cache (it holds 10,000), as a warm server's would be.
    for (let i = 0; i < KEYS; i++) await b.get(key(i));
    return { keyStore, seal, inner, b };
  };
  const cached = await open();
  const uncached = await open({ dekCacheEntries: 0 });
  const ek = createSecretKey(randomBytes(32));
  const records = gcmRecords(ek);
  const draw = randomDraws();
  const spare = mapBackend();
  const sink = { bytes: 0 };

  console.log(`## Barrier overhead against its GCM calls alone (${KEYS.toLocaleString("en-US")} keys of ${VALUE.length} bytes)\n`);
  console.log("The barrier over an in-memory Map backend; the same Map backend alone; and only the AES-256-GCM");
  console.log("calls the barrier must make, with node:crypto (see the top of this file). Overhead = barrier − Map.");
  console.log(`(median of ${ROUNDS} rounds of ${ROUND_MS} ms per side, order rotating, after a ${WARMUP_MS} ms warm-up)\n`);
  console.log("| operation | GCM calls alone µs | Map alone µs | barrier over Map µs | barrier / GCM | **overhead / GCM** | goal |");
  console.log("|---|---:|---:|---:|---:|---:|---|");
  const rows = [
    [
      "get (DEK cached: 1 GCM decryption)",
      (n) => {
        const r = records[pick(n)];
        sink.bytes += gcmDecrypt(r.dekObject, r.valueNonce, r.valueAad, r.valueTag, r.ciphertext).length;
      },
      (n) => cached.inner.get(key(pick(n))),
      (n) => cached.b.get(key(pick(n))),
    ],
    [
      "get, DEK cache disabled (unwrap + decryption: 2 GCM calls)",
      (n) => {
        const r = records[pick(n)];
        const dek = gcmDecrypt(ek, r.wrapNonce, r.wrapAad, r.wrapTag, r.wrappedDek);
        sink.bytes += gcmDecrypt(dek, r.valueNonce, r.valueAad, r.valueTag, r.ciphertext).length;
        dek.fill(0);
      },
      (n) => uncached.inner.get(key(pick(n))),
      (n) => uncached.b.get(key(pick(n))),
    ],
    [
      "put (56 random bytes, encryption + DEK wrap: 2 GCM calls)",
      (n) => {
        const r = records[pick(n)];
        const bytes = draw();
        const dek = bytes.subarray(0, 32);
        const value = gcmEncrypt(dek, bytes.subarray(44, 56), r.valueAad, VALUE);
        const wrapped = gcmEncrypt(ek, bytes.subarray(32, 44), r.wrapAad, dek);
        sink.bytes += value.ciphertext.length + wrapped.ciphertext.length;
      },
      // A Map of its own, so the barrier's records stay as it wrote them.
      (n) => spare.put(key(pick(n)), VALUE),
      (n) => cached.b.put(key(pick(n)), VALUE),
    ],
  ];
  const verdicts = [];
  for (const [name, gcm, inner, onBarrier] of rows) {
    const r = await overheadRounds(gcm, inner, onBarrier);
    verdicts.push(r.net <= GOAL);
    const met = r.net <= GOAL ? `≤ ${GOAL}x: met` : `≤ ${GOAL}x: NOT met`;
    console.log(
      `| ${name} | ${r.gcm.toFixed(2)} | ${r.inner.toFixed(2)} | ${r.barrier.toFixed(2)} | ${r.gross.toFixed(2)}x | **${r.net.toFixed(2)}x** | ${met} |`,
    );
  }
  console.log("");
  if (sink.bytes === 0) throw new Error("the GCM baseline produced nothing");
  for (const side of [cached, uncached]) {
    side.seal.seal();
    await side.b.close();
    await side.keyStore.close();
  }
  return verdicts.every(Boolean);
}

const dir = mkdtempSync(join(tmpdir(), "egide-barrier-bench-"));
try {
  console.log(`# @egide/crypto-envelope benchmark (Node.js ${process.version})\n`);
  await recordOperations();
  const onSqlite = await barrierOverSqlite(dir);
  const againstGcm = await barrierAgainstGcm();
  console.log(onSqlite && againstGcm ? "All goals met." : "Some goals were NOT met (see above).");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
