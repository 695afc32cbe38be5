import { randomBytes } from "node:crypto";
import { RESERVED_PREFIX } from "@egide/crypto-envelope";
import { compareKeys, putEntries } from "@egide/storage-core";
import type { ScanEntry, StorageBackend } from "@egide/storage-core";
import { BackupError, BackupErrorCode } from "./backup-error.js";
import type { RecordSummary } from "./record-digest.js";
import { clearStorage } from "./clear-storage.js";
import { pipelineWrites } from "./pipeline-writes.js";
import { summarizeStorage } from "./storage-summary.js";

/**
 * Where an unfinished migration records, in the destination and in the same transaction as
 * each batch, the last key it copied. Inside the installation's folder, so a server never
 * shows it; deleted when the copy completes.
 */
export const MIGRATION_PROGRESS_KEY = `${RESERVED_PREFIX}migration-progress`;

/** The largest `batchRecords`. */
export const MAX_BATCH_RECORDS = 100_000;

/**
 * Refuses a migration of a storage onto itself (one configuration twice, or two naming the same
 * database), which `force` would empty: a probe key written to the destination must not be
 * visible in the source. The probe is removed at once.
 */
async function refuseSameStorage(from: StorageBackend, to: StorageBackend): Promise<void> {
  const probe = `${MIGRATION_PROGRESS_KEY}-probe-${randomBytes(8).toString("hex")}`;
  await to.put(probe, Buffer.from("migration probe"));
  try {
    if ((await from.get(probe)) !== null) {
      throw new BackupError(BackupErrorCode.INVALID_ARGUMENT, "the source and the destination are the same storage");
    }
  } finally {
    await to.delete(probe);
  }
}

/** Options of {@link migrateRecords}. */
export interface MigrateOptions {
  /** Empty a destination that holds records first (default: refuse with `TARGET_NOT_EMPTY`). */
  force?: boolean;
  /** Continue the interrupted migration recorded in the destination. */
  resume?: boolean;
  /** Records per destination transaction (default 1000). */
  batchRecords?: number;
  /** Progress of the copy, then of the verification of each side. */
  onProgress?: (phase: "copy" | "verify-source" | "verify-destination", records: number, bytes: number) => void;
}

/** What a migration did. */
export interface MigrateReport {
  /** Records copied by this run. */
  copied: number;
  /** Records an earlier, interrupted run had copied (with `resume`). */
  resumedAfter: number;
  /** Count and digest of the source, equal to the destination's. */
  summary: RecordSummary;
}

interface MigrationProgress {
  format: 1;
  lastKey: string;
  copied: number;
}

function parseProgress(bytes: Buffer): MigrationProgress {
  let parsed: Partial<MigrationProgress> | null = null;
  try {
    parsed = JSON.parse(bytes.toString("utf8")) as Partial<MigrationProgress> | null;
  } catch {
    // Reported below like any other unreadable record.
  }
  if (
    parsed === null ||
    typeof parsed !== "object" ||
    parsed.format !== 1 ||
    typeof parsed.lastKey !== "string" ||
    typeof parsed.copied !== "number"
  ) {
    throw new BackupError(
      BackupErrorCode.RECORDS_INVALID,
      "the destination's migration progress record is unreadable; start over with --force",
    );
  }
  return parsed as MigrationProgress;
}

/**
 * Copies every raw record (values still encrypted, `.egide/` included) from `from` to `to`,
 * in key order, `batchRecords` per destination transaction; each batch commits together with
 * the progress record, so an interrupted run resumes (`resume`) exactly after the last batch
 * that committed (the record is removed only after the verification pass succeeds). Ends with a verification pass that compares the count and digest of both
 * sides and fails with `VERIFICATION_FAILED` when they differ. The source must not change
 * while it runs (stop the servers that use it).
 */
export async function migrateRecords(from: StorageBackend, to: StorageBackend, options: MigrateOptions = {}): Promise<MigrateReport> {
  const batchRecords = options.batchRecords ?? 1000;
  if (!Number.isInteger(batchRecords) || batchRecords < 1 || batchRecords > MAX_BATCH_RECORDS) {
    throw new BackupError(BackupErrorCode.INVALID_ARGUMENT, `the batch size must be an integer from 1 to ${MAX_BATCH_RECORDS}`);
  }
  if ((await from.listPage("", "", 1)).length === 0) {
    throw new BackupError(
      BackupErrorCode.INVALID_ARGUMENT,
      "the source storage holds no records: is its configuration (path, database, schema) right?",
    );
  }
  // With `force` alone the destination is emptied whatever it holds, an unreadable progress
  // record included; with `resume` a readable one is continued.
  const stored = options.force && !options.resume ? null : await to.get(MIGRATION_PROGRESS_KEY);
  let progress: MigrationProgress | undefined;
  try {
    progress = stored === null ? undefined : parseProgress(stored);
  } catch (error) {
    if (!options.force) throw error;
  }
  const resuming = options.resume === true && progress !== undefined;
  if (!resuming && !options.force) {
    if (progress) {
      throw new BackupError(
        BackupErrorCode.TARGET_NOT_EMPTY,
        "the destination holds an interrupted migration: continue it with --resume, or start over with --force",
      );
    }
    if ((await to.listPage("", "", 1)).length > 0) {
      throw new BackupError(
        BackupErrorCode.TARGET_NOT_EMPTY,
        options.resume
          ? "the destination holds records but no interrupted migration to resume (use --force to replace them)"
          : "the destination storage already holds records (use --force to replace them)",
      );
    }
  }
  // The refusals above leave the destination untouched; from here on it is written to.
  await refuseSameStorage(from, to);
  if (!resuming && options.force) {
    await to.transaction((tx) => clearStorage(tx));
    progress = undefined;
  }
  const resumedAfter = progress?.copied ?? 0;
  let copied = 0;
  let bytes = 0;
  // Batches of the source, in key order; the next is read while the previous one commits.
  const batches = async function* (): AsyncGenerator<ScanEntry[]> {
    let batch: ScanEntry[] = [];
    for await (const entry of from.scan("")) {
      if (entry.key === MIGRATION_PROGRESS_KEY) continue;
      if (progress && compareKeys(entry.key, progress.lastKey) <= 0) continue;
      batch.push(entry);
      if (batch.length >= batchRecords) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  };
  await pipelineWrites(batches(), async (entries) => {
    const last = entries[entries.length - 1] as ScanEntry;
    const marker: MigrationProgress = { format: 1, lastKey: last.key, copied: resumedAfter + copied + entries.length };
    await to.transaction(async (tx) => {
      await putEntries(tx, entries);
      await tx.put(MIGRATION_PROGRESS_KEY, Buffer.from(JSON.stringify(marker)));
    });
    copied += entries.length;
    for (const entry of entries) bytes += entry.value.length;
    options.onProgress?.("copy", resumedAfter + copied, bytes);
  });
  const exclude = new Set([MIGRATION_PROGRESS_KEY]);
  const source = await summarizeStorage(from, { exclude, onProgress: (n, b) => options.onProgress?.("verify-source", n, b) });
  const destination = await summarizeStorage(to, { exclude, onProgress: (n, b) => options.onProgress?.("verify-destination", n, b) });
  if (source.records !== destination.records || source.digest !== destination.digest) {
    throw new BackupError(
      BackupErrorCode.VERIFICATION_FAILED,
      `verification failed: the source holds ${source.records} records (digest ${source.digest.slice(0, 16)}…), the destination ${destination.records} (digest ${destination.digest.slice(0, 16)}…)`,
    );
  }
  // Only a verified copy ends the migration: until then `resume` can finish it.
  await to.delete(MIGRATION_PROGRESS_KEY);
  return { copied, resumedAfter, summary: source };
}
