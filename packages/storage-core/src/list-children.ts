import { ChildCollector } from "./child-collector.js";
import { prefixSuccessor } from "./key-order.js";

/**
 * One index probe of a skip-scan: up to `limit` keys in order that are `>= from` (or `> from`
 * when `inclusive` is false) and `< before` (no upper bound when `before` is null).
 */
export interface KeySeek {
  from: string;
  inclusive: boolean;
  before: string | null;
  limit: number;
}

/** How many keys each probe fetches (see {@link listChildren}). */
export interface SeekBatch {
  /** Keys fetched by the very first probe (default: `initial`). */
  first?: number;
  /** Keys fetched by the first probe, and by the probe after each folder jump. */
  initial: number;
  /** Probes that ran into leaves only double their batch, up to this size. */
  max: number;
}

/**
 * Batch sizes for a database across a network round trip, where rows are cheap next to a round
 * trip: the first probe answers a folder of up to 256 keys at once; after a folder jump probes
 * start at 32 keys.
 */
export const NETWORK_SEEK_BATCH: SeekBatch = { first: 256, initial: 32, max: 1024 };

/**
 * Batch sizes for an in-process database: a probe costs microseconds, so folder-heavy listings
 * fetch one key per probe, and runs of leaves grow the batch.
 */
export const IN_PROCESS_SEEK_BATCH: SeekBatch = { initial: 1, max: 64 };

/**
 * Vault's list as a skip-scan over an ordered key index, so listing costs O(children) index
 * probes instead of a walk over the whole subtree.
 *
 * Each probe fetches a batch of keys. Leaves in the batch are consumed in place; on meeting a
 * folder the scan skips the rest of that folder's keys in the batch and, if the batch ends
 * inside the folder, jumps past its whole subtree with the next probe
 * (`>= prefixSuccessor(prefix + "folder/")`) and falls back to the initial batch size. A batch
 * that ended on a leaf doubles the next one. So a flat folder of n keys takes O(log n) probes,
 * and a folder with a million descendants costs one entry and at most one batch.
 *
 * The generator yields {@link KeySeek}s and must be sent the keys each one finds; it returns the
 * entries. Drivers run it synchronously (SQLite) or asynchronously (PostgreSQL) with
 * {@link runSkipScan} and {@link runSkipScanAsync}, so every backend lists by the same rules.
 *
 * @param prefix list the direct children of this prefix
 * @param after only entries strictly after this one in byte order ("" for all)
 * @param limit at most this many entries; `<= 0` for all
 * @param batch keys fetched per probe ({ initial: 1, max: 1 } is the pure skip-scan)
 */
export function* listChildren(
  prefix: string,
  after: string,
  limit: number,
  batch: SeekBatch = NETWORK_SEEK_BATCH,
): Generator<KeySeek, string[], readonly string[]> {
  const before = prefixSuccessor(prefix);
  const collector = new ChildCollector(prefix, after, limit);
  let seek: KeySeek = { ...listStart(prefix, after), before, limit: batch.first ?? batch.initial };

  while (!collector.full) {
    const keys = yield seek;
    for (const key of keys) if (!collector.add(key)) break;
    if (keys.length < seek.limit || collector.full) break;
    const folderEnd = collector.folderEnd;
    seek =
      folderEnd !== null
        ? { from: folderEnd, inclusive: true, before, limit: batch.initial }
        : { from: keys[keys.length - 1] as string, inclusive: false, before, limit: Math.min(seek.limit * 2, batch.max) };
  }
  return collector.entries;
}

/**
 * Where a listing of `prefix` that resumes after `after` starts: the first key is `>= from`
 * (or `> from` when `inclusive` is false). After a folder entry the whole folder is skipped.
 */
export function listStart(prefix: string, after: string): { from: string; inclusive: boolean } {
  if (after === "") return { from: prefix, inclusive: true };
  if (after.endsWith("/")) return { from: prefixSuccessor(prefix + after) as string, inclusive: true };
  return { from: prefix + after, inclusive: false };
}

/** Runs {@link listChildren} with a synchronous index probe. */
export function runSkipScan(scan: Generator<KeySeek, string[], readonly string[]>, seek: (probe: KeySeek) => readonly string[]): string[] {
  let step = scan.next();
  while (!step.done) step = scan.next(seek(step.value));
  return step.value;
}

/** Runs {@link listChildren} with an asynchronous index probe. */
export async function runSkipScanAsync(
  scan: Generator<KeySeek, string[], readonly string[]>,
  seek: (probe: KeySeek) => Promise<readonly string[]>,
): Promise<string[]> {
  let step = scan.next();
  while (!step.done) step = scan.next(await seek(step.value));
  return step.value;
}
