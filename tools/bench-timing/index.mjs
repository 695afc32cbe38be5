// Timing shared by the packages' bench scripts (`pnpm bench`): each compares two ways of doing
// the same operation in the same run, in rounds that alternate which side goes first, and
// reports per-round medians, so the machine's speed and its drift cancel out.
import { performance } from "node:perf_hooks";

/**
 * Runs `op(n)` for n = 0, 1, … for about `ms` and returns operations per second. With
 * `sync: true` the results are not awaited (a synchronous driver call); otherwise each is.
 * The clock is read every 32 operations so reading it costs next to nothing.
 */
export async function opsPerSecond(op, ms, { sync = false } = {}) {
  let n = 0;
  const started = performance.now();
  const end = started + ms;
  if (sync) {
    while (performance.now() < end) for (let i = 0; i < 32; i++) op(n++);
  } else {
    while (performance.now() < end) for (let i = 0; i < 32; i++) await op(n++);
  }
  return (n * 1000) / (performance.now() - started);
}

/**
 * Runs `op(n)` for n = 0, 1, … with `concurrency` calls in flight for about `ms`; returns
 * operations per second (`rate`) and this process's user CPU time per operation in µs (`cpu`:
 * the client-side cost, steadier than throughput on a busy machine).
 */
export async function timeConcurrent(op, ms, concurrency) {
  let n = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const end = started + ms;
  const worker = async () => {
    while (performance.now() < end) await op(n++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - started;
  return { rate: (n * 1000) / elapsed, cpu: process.cpuUsage(cpu).user / n };
}

/** The median of `values` (the upper one of an even count). */
export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * Times `a` and `b` after a warm-up of each, in `rounds` rounds of `roundMs` whose order flips
 * every round; returns the medians of their ops/s and of the per-round ratios b / a.
 */
export async function compareAlternating(a, b, { rounds, roundMs, warmupMs, aSync = false, bSync = false }) {
  const timeA = (ms) => opsPerSecond(a, ms, { sync: aSync });
  const timeB = (ms) => opsPerSecond(b, ms, { sync: bSync });
  await timeA(warmupMs);
  await timeB(warmupMs);
  const aRates = [];
  const bRates = [];
  const ratios = [];
  for (let round = 0; round < rounds; round++) {
    let ra;
    let rb;
    if (round % 2 === 0) {
      ra = await timeA(roundMs);
      rb = await timeB(roundMs);
    } else {
      rb = await timeB(roundMs);
      ra = await timeA(roundMs);
    }
    aRates.push(ra);
    bRates.push(rb);
    ratios.push(rb / ra);
  }
  return { a: median(aRates), b: median(bRates), ratio: median(ratios) };
}

/**
 * A picker of pseudo-random key indexes below `keys`: `pick(n)` for the n-th operation, from a
 * table drawn once, so choosing a key costs an array read, not a `Math.random()` call.
 */
export function randomPicker(keys) {
  const order = Int32Array.from({ length: 1 << 16 }, () => Math.floor(Math.random() * keys));
  return (n) => order[n & 0xffff];
}

/** A rate or count as printed in the tables (`12,345`). */
export const formatCount = (n) => Math.round(n).toLocaleString("en-US");
