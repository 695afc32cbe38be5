import { createReadStream, statSync } from "node:fs";
import type { Command } from "commander";
import { KEYRING_KEY, SEAL_CONFIG_KEY, SealManager } from "@egide/crypto-envelope";
import { BackupError, BackupErrorCode, ByteReader, RecordsView, readBackupHeader, restoreBackup } from "@egide/storage-backup";
import type { BackupHeader } from "@egide/storage-backup";
import type { CliContext } from "../cli-context.js";
import { CliError, usageError } from "../cli-error.js";
import { asCliError } from "../backup/as-cli-error.js";
import { ProgressReporter, formatBytes } from "../backup/progress-reporter.js";
import { openOfflineStorage } from "../offline/offline-storage.js";
import { unsealOffline } from "../offline/unseal-offline.js";
import { formatOption, outputFormat } from "../output/output-format.js";
import { printJson } from "../output/print-json.js";

interface RestoreOptions {
  input: string;
  config?: string;
  force?: boolean;
  format?: string;
}

/** Reads the public header of a backup file (to find its installation and unseal records). */
async function readHeader(file: string): Promise<BackupHeader> {
  const input = new ByteReader(createReadStream(file));
  try {
    return (await readBackupHeader(input)).header;
  } finally {
    await input.close();
  }
}

/**
 * `egide operator restore --input F.enc --config egide.toml`: restores a backup into the
 * storage of a stopped server. The backup's own unseal records and the installation's unseal
 * keys (prompted, on standard input, or the configuration's auto-unseal key) open it, so the
 * target may be a blank database or the installation it came from, never another one. The whole
 * file is verified before anything changes; the target is then replaced in one transaction that
 * also activates a new key version. A target with records needs `--force`.
 */
export function registerOperatorRestoreCommand(operator: Command, ctx: CliContext): void {
  operator
    .command("restore")
    .description("restore a backup into the storage of a stopped server (verified first, applied in one transaction)")
    .requiredOption("--input <file>", "the backup file")
    .option("--config <file>", "the configuration of the server whose storage receives the backup (stop that server first)")
    .option("--force", "replace a target that already holds records")
    .addOption(formatOption())
    .action(async (options: RestoreOptions) => {
      if (options.config === undefined) {
        throw usageError("restore works on the storage itself: stop the server(s) and pass --config egide.toml");
      }
      let size: number;
      try {
        size = statSync(options.input).size;
      } catch (error) {
        throw new CliError(`cannot read ${options.input}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      let header: BackupHeader;
      try {
        header = await readHeader(options.input);
      } catch (error) {
        throw asCliError(error, `${options.input} cannot be restored`);
      }
      const { config, raw } = await openOfflineStorage(options.config, ctx.io);
      const keys = await SealManager.open(new RecordsView(header.unsealRecords), { readOnly: true }).catch((error: unknown) => {
        throw asCliError(error, `${options.input} cannot be restored`);
      });
      let progress: ProgressReporter | undefined;
      try {
        const backupConfig = header.unsealRecords.find((record) => record.key === SEAL_CONFIG_KEY);
        const targetConfig = await raw.get(SEAL_CONFIG_KEY);
        if (!backupConfig) throw new CliError(`${options.input} holds no installation to restore`);
        if (targetConfig !== null && !targetConfig.equals(backupConfig.value)) {
          throw new BackupError(
            BackupErrorCode.FOREIGN_INSTALLATION,
            `this backup belongs to another installation than the storage of ${options.config} (a different master key): restore it into a blank database or into the installation it came from`,
          );
        }
        await unsealOffline(keys, ctx.io, { autoUnseal: config.seal.autoUnseal, what: "the backup's installation", hint: "wrong unseal keys, or a damaged backup header" });
        const previousKeyring = (await raw.get(KEYRING_KEY)) ?? undefined;
        let newVersion = 0;
        let phase: "verify" | "apply" | undefined;
        const report = await restoreBackup(raw, () => createReadStream(options.input), keys, {
          force: options.force === true,
          onProgress: (current, p) => {
            if (current !== phase) {
              progress?.stop();
              phase = current;
              progress = new ProgressReporter(ctx.io.stderr, current === "verify" ? "Verifying" : "Restoring", size);
            }
            progress?.update(p);
          },
          beforeCommit: async (tx) => {
            newVersion = await keys.rotateAfterRestore(tx, previousKeyring ? { previousKeyring } : {});
          },
        });
        progress?.stop();
        if (outputFormat(options) === "json") {
          printJson(ctx.io.stdout, {
            input: options.input,
            entries: report.records,
            digest: report.digest,
            replaced: report.replaced,
            created_time: report.header.createdAt.toISOString(),
            key_version: newVersion,
          });
          return;
        }
        ctx.io.stdout.write(
          `Success! Restored ${report.records} entries (${formatBytes(report.fileBytes)}, snapshot of ${report.header.createdAt.toISOString()}) into ${options.config}` +
            `${report.replaced > 0 ? `, replacing ${report.replaced} entries` : ""}; new key version ${newVersion}. Start the server and unseal it with the same keys.\n`,
        );
      } catch (error) {
        progress?.stop();
        throw asCliError(error, "restore failed, nothing was changed");
      } finally {
        keys.seal();
        await raw.close();
      }
    });
}
