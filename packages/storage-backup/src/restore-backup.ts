import { putEntries } from "@egide/storage-core";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import { BackupError, BackupErrorCode } from "./backup-error.js";
import type { BackupHeader } from "./backup-header.js";
import type { BackupKeySource } from "./backup-key-source.js";
import { BackupReader, verifyBackup } from "./backup-reader.js";
import type { BackupProgress, BackupSummary } from "./backup-reader.js";
import { clearStorage } from "./clear-storage.js";
import { pipelineWrites } from "./pipeline-writes.js";
import { holdsUserRecords } from "./user-records.js";

/** Options of {@link restoreBackup}. */
export interface RestoreOptions {
  /** Replace a target that holds records of its own (default: refuse with `TARGET_NOT_EMPTY`). */
  force?: boolean;
  /** Progress of the verification pass, then of the apply pass. */
  onProgress?: (phase: "verify" | "apply", progress: BackupProgress) => void;
  /**
   * Runs inside the restore transaction after every record is written and checked, before the
   * commit (the CLI rotates the restored keyring here).
   */
  beforeCommit?: (tx: Transaction) => Promise<void>;
}

/** What a restore did. */
export interface RestoreReport extends BackupSummary {
  /** Keys that were in the target before and were deleted by the restore. */
  replaced: number;
}

/**
 * Restores a backup into `target` (the raw adapter): first reads and verifies the whole file
 * (`open` is called once per pass and must give the same bytes each time), and changes nothing
 * unless all of it verifies; then, in ONE transaction, deletes what the target holds and writes
 * every record, in batches of a chunk's records, committing only after the second pass has
 * verified the file again to its last byte. A failure at any point leaves the target as it was.
 */
export async function restoreBackup(
  target: StorageBackend,
  open: () => AsyncIterable<Uint8Array>,
  keys: BackupKeySource | ((header: BackupHeader) => Promise<BackupKeySource>),
  options: RestoreOptions = {},
): Promise<RestoreReport> {
  const verified = await verifyBackup(open(), keys, { onProgress: (p) => options.onProgress?.("verify", p) });
  if (!options.force && (await holdsUserRecords(target))) {
    throw new BackupError(
      BackupErrorCode.TARGET_NOT_EMPTY,
      "the target storage already holds records; a restore replaces everything in it (use --force to allow that)",
    );
  }
  return target.transaction(async (tx) => {
    const replaced = await clearStorage(tx);
    const reader = await BackupReader.open(open(), keys, { onProgress: (p) => options.onProgress?.("apply", p) });
    await pipelineWrites(reader.batches(), (batch) => putEntries(tx, batch));
    const summary = reader.summary as BackupSummary;
    if (summary.digest !== verified.digest || summary.records !== verified.records) {
      throw new BackupError(BackupErrorCode.RECORDS_INVALID, "the backup file changed between its verification and the restore");
    }
    await options.beforeCommit?.(tx);
    return { ...summary, replaced };
  });
}
