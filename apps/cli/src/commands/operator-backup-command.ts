import type { Command } from "commander";
import type { SealManager as SealManagerType } from "@egide/crypto-envelope";
import type { CliContext } from "../cli-context.js";
import { CliError, usageError } from "../cli-error.js";
import { asCliError } from "../backup/as-cli-error.js";
import type { ProgressReporter } from "../backup/progress-reporter.js";
import { writeFileAtomically } from "../backup/write-file-atomically.js";
import { openOfflineStorage } from "../offline/offline-storage.js";
import { unsealOffline } from "../offline/unseal-offline.js";
import { formatBytes } from "../output/format-bytes.js";
import { printJson } from "../output/print-json.js";
import { parseWholeNumber } from "../input/argument-parsers.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

interface BackupOptions extends NetworkOptions {
  output: string;
  config?: string;
  chunkSize?: number;
  force?: boolean;
}

/**
 * `egide operator backup --output F.enc`: an encrypted, authenticated point-in-time snapshot of
 * every record, streamed from the server (`GET /v1/sys/storage/backup`, a root or sudo token),
 * or with `--config egide.toml` read from the storage directly (unsealed here with the
 * configuration's auto-unseal key, or unseal keys at a prompt or on standard input). The file
 * appears only when complete. The backup library loads only when the command runs, so the
 * other commands start faster.
 */
export function registerOperatorBackupCommand(operator: Command, ctx: CliContext): void {
  withNetworkOptions(
    operator
      .command("backup")
      .description(
        "write an encrypted, authenticated snapshot of every record to a file (online from the server, or offline with --config)",
      )
      .requiredOption("--output <file>", "the backup file to write (appears only when complete)")
      .option(
        "--config <file>",
        "offline: read the storage of this server configuration directly (one snapshot, even while a server uses it)",
      )
      .option("--chunk-size <bytes>", "plaintext bytes per chunk, 256 B to 16 MiB (default 1 MiB)", parseWholeNumber)
      .option("--force", "replace an existing output file"),
  ).action(async (options: BackupOptions) => {
    const { MAX_CHUNK_BYTES, MIN_CHUNK_BYTES } = await import("@egide/storage-backup");
    if (options.chunkSize !== undefined && (options.chunkSize < MIN_CHUNK_BYTES || options.chunkSize > MAX_CHUNK_BYTES)) {
      throw usageError(`--chunk-size must be from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES} bytes`);
    }
    const { ProgressReporter } = await import("../backup/progress-reporter.js");
    // Online, this process only relays ciphertext: it can count bytes, not entries.
    const progress = new ProgressReporter(ctx.io.stderr, "Backing up", undefined, { records: options.config !== undefined });
    let result: { bytes: number; records?: number; digest?: string };
    try {
      result = options.config === undefined ? await backupOnline(options, ctx, progress) : await backupOffline(options, ctx, progress);
    } finally {
      progress.stop();
    }
    if (formatOf(options) === "json") {
      printJson(ctx.io.stdout, {
        output: options.output,
        bytes: result.bytes,
        ...(result.records === undefined ? {} : { entries: result.records, digest: result.digest }),
      });
      return;
    }
    const entries = result.records === undefined ? "" : `, ${result.records} entries`;
    ctx.io.stdout.write(`Success! Backup written to ${options.output} (${formatBytes(result.bytes)}${entries})\n`);
  });
}

async function backupOnline(
  options: BackupOptions,
  ctx: CliContext,
  progress: ProgressReporter,
): Promise<{ bytes: number; records?: number; digest?: string }> {
  const client = clientFor(options, ctx.io);
  const response = await client.stream(
    "sys/storage/backup",
    options.chunkSize === undefined ? undefined : { chunk_bytes: options.chunkSize },
  );
  try {
    const bytes = await writeFileAtomically(options.output, response, {
      overwrite: options.force === true,
      onBytes: (n) => progress.update({ records: 0, bytes: n }),
    });
    // The server sends the count and digest as trailers once the stream is complete.
    const records = Number(response.trailers["x-egide-backup-entries"]);
    const digest = response.trailers["x-egide-backup-digest"];
    return Number.isSafeInteger(records) && records > 0 && digest ? { bytes, records, digest } : { bytes };
  } catch (error) {
    response.destroy();
    if (error instanceof CliError) throw error;
    throw new CliError(`the backup stream from ${client.address} broke off; no file was written: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function backupOffline(
  options: BackupOptions,
  ctx: CliContext,
  progress: ProgressReporter,
): Promise<{ bytes: number; records: number; digest: string }> {
  const { SealManager } = await import("@egide/crypto-envelope");
  const { BackupWriter } = await import("@egide/storage-backup");
  const { config, raw } = await openOfflineStorage(options.config as string, ctx.io, { mustExist: true });
  let seal: SealManagerType | undefined;
  try {
    // Read-only: an offline backup never writes the storage it copies.
    seal = await SealManager.open(raw, { readOnly: true });
    if (!seal.initialized) throw new CliError(`the storage of ${options.config} holds no initialised installation: nothing to back up`);
    await unsealOffline(seal, ctx.io, { autoUnseal: config.seal.autoUnseal, what: "the installation" });
    const writer = new BackupWriter(raw, seal, {
      ...(options.chunkSize === undefined ? {} : { chunkBytes: options.chunkSize }),
      onProgress: (p) => progress.update(p),
    });
    const bytes = await writeFileAtomically(options.output, writer, { overwrite: options.force === true });
    const summary = writer.summary as { records: number; digest: string };
    return { bytes, records: summary.records, digest: summary.digest };
  } catch (error) {
    throw asCliError(error, "backup failed");
  } finally {
    seal?.seal();
    await raw.close();
  }
}
