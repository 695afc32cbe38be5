import { KEYRING_KEY, SEAL_CONFIG_KEY, SealManager } from "@egide/crypto-envelope";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import { BackupError, BackupErrorCode } from "./backup-error.js";
import type { BackupHeader } from "./backup-header.js";
import type { BackupKeySource } from "./backup-key-source.js";
import type { BackupProgress } from "./backup-reader.js";
import { RecordsView } from "./records-view.js";
import { restoreBackup } from "./restore-backup.js";
import type { RestoreReport } from "./restore-backup.js";

/**
 * The keys of a restore that rotates the restored keyring: an unsealed installation that can
 * also activate a new key version inside the restore transaction. `SealManager` from
 * `@egide/crypto-envelope` implements it (structural, like {@link BackupKeySource}).
 */
export interface RestoreKeySource extends BackupKeySource {
  /**
   * Activates a new key version in `tx` after the restored records are written, keeping
   * `previousKeyring` (the target's keyring before the restore) readable; returns the version.
   */
  rotateAfterRestore(tx: Transaction, options?: { previousKeyring?: Uint8Array }): Promise<number>;
}

/**
 * Where {@link restoreInstallation} takes its keys from:
 *
 * - `{ running }`: an unsealed installation already serving the target (a server restoring
 *   into its own storage). Its installation fingerprint refuses another installation's backup.
 *   The caller keeps it, and seals it after the restore if it must.
 * - `{ header, unseal }`: offline, the backup's own unseal records (from its `header`, read
 *   with `readBackupHeader`): a read-only `SealManager` is opened over them and handed to
 *   `unseal` (unseal keys, auto-unseal, …). The target must then be blank or hold the same
 *   seal configuration (same installation), else `FOREIGN_INSTALLATION` before `unseal` is
 *   called. That manager is sealed again before `restoreInstallation` returns or throws.
 */
export type RestoreInstallationKeys =
  | { running: RestoreKeySource }
  | { header: BackupHeader; unseal: (manager: SealManager) => Promise<void> };

/** Options of {@link restoreInstallation}. */
export interface RestoreInstallationOptions {
  /** The raw storage adapter (not the barrier) whose whole content the backup replaces. */
  target: StorageBackend;
  /** Opens the backup file; called once per pass, it must give the same bytes each time. */
  open: () => AsyncIterable<Uint8Array>;
  /** Where the keys come from (see {@link RestoreInstallationKeys}). */
  keys: RestoreInstallationKeys;
  /** Replace a target that holds records of its own (default: refuse with `TARGET_NOT_EMPTY`). */
  force?: boolean;
  /** Progress of the verification pass, then of the apply pass. */
  onProgress?: (phase: "verify" | "apply", progress: BackupProgress) => void;
  /**
   * More work in the restore transaction, after the new key version is activated and before
   * the commit (a server appends the request's audit row here): it commits with the restore or
   * not at all.
   */
  beforeCommit?: (tx: Transaction) => Promise<void>;
  /**
   * Names the target in the offline `FOREIGN_INSTALLATION` message, such as
   * `"the storage of egide.toml"` (default `"the target storage"`).
   */
  targetLabel?: string;
}

/** What {@link restoreInstallation} did. */
export interface RestoreInstallationReport extends RestoreReport {
  /** The key version activated in the restore transaction. */
  keyVersion: number;
}

/**
 * Restores a whole installation from a backup: the protocol both the server
 * (`POST /v1/sys/storage/restore`) and the CLI (`egide operator restore`, offline) follow.
 * Reads the target's keyring raw before anything changes, then runs {@link restoreBackup}
 * (the whole file verified first; one transaction that replaces everything) whose commit also
 * activates a new key version over the restored keyring (`rotateAfterRestore`, keeping the
 * target's previous keyring readable) and runs the caller's `beforeCommit`. Offline
 * (`keys: { header, unseal }`), the backup's own unseal records provide the keys and the
 * target's seal configuration must match the backup's (or be absent). Every failure leaves
 * the target as it was; refusals are `BackupError`s.
 */
export async function restoreInstallation(options: RestoreInstallationOptions): Promise<RestoreInstallationReport> {
  const { target, keys } = options;
  if ("running" in keys) return restoreWith(options, keys.running);
  const manager = await SealManager.open(new RecordsView(keys.header.unsealRecords), { readOnly: true });
  try {
    const backupConfig = keys.header.unsealRecords.find((record) => record.key === SEAL_CONFIG_KEY);
    if (!backupConfig) throw new BackupError(BackupErrorCode.RECORDS_INVALID, "the backup holds no installation to restore");
    const targetConfig = await target.get(SEAL_CONFIG_KEY);
    if (targetConfig !== null && !targetConfig.equals(backupConfig.value)) {
      throw new BackupError(
        BackupErrorCode.FOREIGN_INSTALLATION,
        `this backup belongs to another installation than ${options.targetLabel ?? "the target storage"} (a different master key): restore it into a blank database or into the installation it came from`,
      );
    }
    await keys.unseal(manager);
    return await restoreWith(options, manager);
  } finally {
    manager.seal();
  }
}

async function restoreWith(options: RestoreInstallationOptions, keys: RestoreKeySource): Promise<RestoreInstallationReport> {
  const previousKeyring = (await options.target.get(KEYRING_KEY)) ?? undefined;
  let keyVersion = 0;
  const report = await restoreBackup(options.target, options.open, keys, {
    ...(options.force !== undefined ? { force: options.force } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    beforeCommit: async (tx) => {
      keyVersion = await keys.rotateAfterRestore(tx, previousKeyring ? { previousKeyring } : {});
      await options.beforeCommit?.(tx);
    },
  });
  return { ...report, keyVersion };
}
