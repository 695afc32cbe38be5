import { compareKeys } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import type { AesKey } from "./aes-gcm.js";
import type { RandomSource } from "./random-source.js";
import { isReservedKey } from "./reserved-keys.js";
import type { SealLogger } from "./seal-settings.js";
import { rewrapValue, valueKeyVersion } from "./value-record.js";
import type { VersionedKey } from "./value-record.js";

/** Options of `SealManager.rewrap`. */
export interface RewrapOptions {
  /** Records rewrapped per transaction. Default 100. */
  batchSize?: number;
  /** Stops after the current batch; the next call resumes from there. */
  signal?: AbortSignal;
  /** Called after every batch. */
  onProgress?: (progress: RewrapReport) => void;
  /**
   * Return at once when a pass to the active version already completed (records written since
   * use that version). Default false: an explicit rewrap examines every record again.
   */
  skipIfDone?: boolean;
}

/** What a rewrap did. */
export interface RewrapReport {
  /** The version records were moved to. */
  targetVersion: number;
  /** Records looked at in this call. */
  examined: number;
  /** Records rewrapped in this call. */
  rewrapped: number;
  /** Where this call started: after this key, or from the beginning (`null`). */
  resumedAfter: string | null;
  /** Whether every record was examined (false when stopped by `signal`). */
  complete: boolean;
}

/** What the rewrap needs from the seal manager. */
export interface RewrapContext {
  storage: StorageBackend;
  random: RandomSource;
  logger: SealLogger | undefined;
  activeKey(): VersionedKey;
  keyFor(version: number): AesKey;
  loadProgress(): Promise<Buffer | null>;
  saveProgress(bytes: Buffer): Promise<void>;
}

interface StoredProgress {
  target: number;
  after: string | null;
  done: boolean;
}

const DEFAULT_BATCH = 100;
// Progress is saved at least this often while scanning records that need no rewrap, so an
// interrupted pass over an already-rewrapped store does not start over.
const SAVE_EVERY_EXAMINED = 1000;

/**
 * Walks every record in key order and rewraps, in batched transactions, those under a version
 * older than the active one. Each record is read again inside the transaction and rewritten
 * only if it still holds an older version, so a value written meanwhile is never overwritten.
 */
export async function runRewrap(context: RewrapContext, options: RewrapOptions): Promise<RewrapReport> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError("rewrap: batchSize must be a positive integer");
  const target = context.activeKey().version;
  const stored = parseProgress(await context.loadProgress());
  const resumedAfter = stored && stored.target === target && !stored.done ? stored.after : null;
  const report: RewrapReport = { targetVersion: target, examined: 0, rewrapped: 0, resumedAfter, complete: false };
  // A pass to this version already finished: every record written since uses it.
  if (options.skipIfDone && stored && stored.target === target && stored.done) return { ...report, complete: true };

  let batch: string[] = [];
  let lastKey = resumedAfter;
  let unsaved = 0;
  const save = async (done: boolean): Promise<void> => {
    await context.saveProgress(Buffer.from(JSON.stringify({ target, after: lastKey, done } satisfies StoredProgress), "utf8"));
    unsaved = 0;
  };
  const flush = async (): Promise<void> => {
    if (batch.length > 0) {
      const keys = batch;
      batch = [];
      report.rewrapped += await context.storage.transaction(async (tx) => {
        let moved = 0;
        const targetKey: VersionedKey = { version: target, key: context.keyFor(target) };
        for (const key of keys) {
          const record = await tx.get(key);
          if (record === null || valueKeyVersion(record) >= target) continue;
          await tx.put(key, rewrapValue(key, record, context.keyFor, targetKey, context.random));
          moved++;
        }
        return moved;
      });
    }
    await save(false);
    options.onProgress?.({ ...report });
  };

  for await (const entry of context.storage.scan("")) {
    if (isReservedKey(entry.key)) continue;
    if (resumedAfter !== null && compareKeys(entry.key, resumedAfter) <= 0) continue;
    report.examined++;
    unsaved++;
    if (valueKeyVersion(entry.value) < target) batch.push(entry.key);
    lastKey = entry.key;
    if (batch.length >= batchSize || unsaved >= SAVE_EVERY_EXAMINED) {
      await flush();
      if (options.signal?.aborted) {
        context.logger?.info("rewrap paused", { targetVersion: target, examined: report.examined, rewrapped: report.rewrapped });
        return report;
      }
    }
  }
  if (batch.length > 0) await flush();
  await save(true);
  report.complete = true;
  context.logger?.info("rewrap complete", { targetVersion: target, examined: report.examined, rewrapped: report.rewrapped });
  return report;
}

function parseProgress(bytes: Buffer | null): StoredProgress | null {
  if (bytes === null) return null;
  const parsed = JSON.parse(bytes.toString("utf8")) as StoredProgress;
  return typeof parsed.target === "number" && typeof parsed.done === "boolean" ? parsed : null;
}
