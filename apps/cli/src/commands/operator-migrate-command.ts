import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { asCliError } from "../backup/as-cli-error.js";
import { usageError } from "../cli-error.js";
import { parsePositiveNumber } from "../input/argument-parsers.js";
import { openOfflineStorage } from "../offline/offline-storage.js";
import type { OfflineStorage } from "../offline/offline-storage.js";
import { formatOption, outputFormat } from "../output/output-format.js";
import { printJson } from "../output/print-json.js";

/** What the progress bar says in each phase of a migration. */
const PHASE_LABELS = { copy: "Copying", "verify-source": "Verifying source", "verify-destination": "Verifying destination" } as const;

interface MigrateOptions {
  from: string;
  to: string;
  force?: boolean;
  resume?: boolean;
  batchSize?: number;
  format?: string;
}

/**
 * `egide operator migrate --from a.toml --to b.toml`: copies every raw (still encrypted) record
 * from one configured storage to another, for example SQLite to PostgreSQL, in batches that
 * each commit with a progress record (so `--resume` continues an interrupted run), then
 * verifies both sides' count and digest. No keys are needed: nothing is decrypted. A server
 * started on the destination unseals with the same keys.
 */
export function registerOperatorMigrateCommand(operator: Command, ctx: CliContext): void {
  operator
    .command("migrate")
    .description("copy every record between two configured storages (e.g. SQLite to PostgreSQL) and verify the copy")
    .requiredOption("--from <file>", "the configuration whose storage is copied (stop its server first)")
    .requiredOption("--to <file>", "the configuration whose storage receives the copy")
    .option("--force", "empty a destination that already holds records first")
    .option("--resume", "continue an interrupted migration into the same destination")
    .option("--batch-size <n>", "records per destination transaction (1 to 100000, default 1000)", parsePositiveNumber)
    .addOption(formatOption())
    .action(async (options: MigrateOptions) => {
      const { MAX_BATCH_RECORDS, migrateRecords } = await import("@egide/storage-backup");
      if (options.batchSize !== undefined && options.batchSize > MAX_BATCH_RECORDS)
        throw usageError(`--batch-size must be at most ${MAX_BATCH_RECORDS}`);
      const { PhasedProgress } = await import("../backup/progress-reporter.js");
      const from = await openOfflineStorage(options.from, ctx.io, { mustExist: true });
      let to: OfflineStorage | undefined;
      const progress = new PhasedProgress(ctx.io.stderr);
      try {
        to = await openOfflineStorage(options.to, ctx.io);
        const report = await migrateRecords(from.raw, to.raw, {
          force: options.force === true,
          resume: options.resume === true,
          ...(options.batchSize === undefined ? {} : { batchRecords: options.batchSize }),
          onProgress: (phase, records, bytes) => progress.update(PHASE_LABELS[phase], { records, bytes }),
        });
        progress.stop();
        if (outputFormat(options) === "json") {
          printJson(ctx.io.stdout, {
            copied: report.copied,
            resumed_after: report.resumedAfter,
            entries: report.summary.records,
            digest: report.summary.digest,
            verified: true,
          });
          return;
        }
        const resumed = report.resumedAfter > 0 ? ` (resumed after ${report.resumedAfter})` : "";
        ctx.io.stdout.write(
          `Success! Copied ${report.copied} entries${resumed} from ${from.raw.type} to ${to.raw.type}; verified: both hold ${report.summary.records} entries with digest ${report.summary.digest}\n`,
        );
      } catch (error) {
        progress.stop();
        throw asCliError(error, "migration failed");
      } finally {
        await from.raw.close();
        await to?.raw.close();
      }
    });
}
