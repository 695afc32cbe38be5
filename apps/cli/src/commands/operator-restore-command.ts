import { createReadStream, statSync } from "node:fs";
import type { Command } from "commander";
import type { BackupHeader } from "@egide/storage-backup";
import type { CliContext } from "../cli-context.js";
import { CliError } from "../cli-error.js";
import { asCliError } from "../backup/as-cli-error.js";
import { openOfflineStorage } from "../offline/offline-storage.js";
import { unsealOffline } from "../offline/unseal-offline.js";
import { formatBytes } from "../output/format-bytes.js";
import { printJson } from "../output/print-json.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

interface RestoreOptions extends NetworkOptions {
  input: string;
  config?: string;
  force?: boolean;
}

/** What a restore reports, online or offline. */
interface RestoreResult {
  entries: number;
  digest: string;
  replaced: number;
  createdTime: string;
  keyVersion: number;
  fileBytes: number;
}

/**
 * `egide operator restore --input F.enc`: replaces the whole storage with a backup's records.
 * Online (the default), the file is uploaded to the server (`POST /v1/sys/storage/restore`,
 * a root or sudo token), which verifies it, restores it in one transaction and seals itself.
 * Offline, `--config egide.toml` restores into the storage of a stopped server directly: the
 * backup's own unseal records and the installation's unseal keys (prompted, on standard
 * input, or the configuration's auto-unseal key) open it, so the target may be a blank
 * database or the installation it came from, never another one. Either way the whole file is
 * verified before anything changes, a new key version is activated, and a target holding
 * records needs `--force`.
 */
export function registerOperatorRestoreCommand(operator: Command, ctx: CliContext): void {
  withNetworkOptions(
    operator
      .command("restore")
      .description("restore a backup: uploaded to the server (which then seals), or offline into a stopped server's storage with --config")
      .requiredOption("--input <file>", "the backup file")
      .option("--config <file>", "offline: restore into the storage of this server configuration (stop that server first)")
      .option("--force", "replace a target that already holds records (a server in use always does)"),
  ).action(async (options: RestoreOptions) => {
    let size: number;
    try {
      size = statSync(options.input).size;
    } catch (error) {
      throw new CliError(`cannot read ${options.input}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const { PhasedProgress } = await import("../backup/progress-reporter.js");
    // One bar per phase (Uploading, or Verifying then Restoring), each over the file's bytes.
    const progress = new PhasedProgress(ctx.io.stderr, size);
    const onProgress = (phase: string, p: { records: number; bytes: number }) =>
      progress.update(phase, p, { records: phase !== "Uploading" });
    let result: RestoreResult;
    try {
      result =
        options.config === undefined ? await restoreOnline(options, ctx, size, onProgress) : await restoreOffline(options, ctx, onProgress);
    } finally {
      progress.stop();
    }
    const online = options.config === undefined;
    if (formatOf(options) === "json") {
      printJson(ctx.io.stdout, {
        input: options.input,
        entries: result.entries,
        digest: result.digest,
        replaced: result.replaced,
        created_time: result.createdTime,
        key_version: result.keyVersion,
        ...(online ? { sealed: true } : {}),
      });
      return;
    }
    const into = online ? clientFor(options, ctx.io).address : options.config;
    const replaced = result.replaced > 0 ? `, replacing ${result.replaced} entries` : "";
    const next = online ? "The server is now sealed: unseal it with the same keys." : "Start the server and unseal it with the same keys.";
    ctx.io.stdout.write(
      `Success! Restored ${result.entries} entries (${formatBytes(result.fileBytes)}, snapshot of ${result.createdTime}) into ${into}${replaced}; new key version ${result.keyVersion}. ${next}\n`,
    );
  });
}

async function restoreOnline(
  options: RestoreOptions,
  ctx: CliContext,
  size: number,
  onProgress: (phase: string, p: { records: number; bytes: number }) => void,
): Promise<RestoreResult> {
  const client = clientFor(options, ctx.io);
  const stream = createReadStream(options.input);
  let sent = 0;
  stream.on("data", (chunk) => {
    sent += chunk.length;
    onProgress("Uploading", { records: 0, bytes: sent });
  });
  const answer = await client.request<{
    data?: { entries: number; digest: string; replaced: number; created_time: string; key_version: number };
  }>("POST", "sys/storage/restore", { upload: { stream, bytes: size }, ...(options.force ? { query: { force: true } } : {}) });
  const data = answer.body?.data;
  if (!data) throw new CliError(`the server at ${client.address} answered the restore without a report`);
  return {
    entries: data.entries,
    digest: data.digest,
    replaced: data.replaced,
    createdTime: data.created_time,
    keyVersion: data.key_version,
    fileBytes: size,
  };
}

async function restoreOffline(
  options: RestoreOptions,
  ctx: CliContext,
  onProgress: (phase: string, p: { records: number; bytes: number }) => void,
): Promise<RestoreResult> {
  const { SEAL_CONFIG_KEY } = await import("@egide/crypto-envelope");
  const { ByteReader, readBackupHeader, restoreInstallation } = await import("@egide/storage-backup");
  let header: BackupHeader;
  const input = new ByteReader(createReadStream(options.input));
  try {
    header = (await readBackupHeader(input)).header;
  } catch (error) {
    throw asCliError(error, `${options.input} cannot be restored`);
  } finally {
    await input.close();
  }
  const { config, raw } = await openOfflineStorage(options.config as string, ctx.io);
  try {
    // restoreInstallation refuses such a header too; this keeps the CLI's own one-line message.
    if (!header.unsealRecords.some((record) => record.key === SEAL_CONFIG_KEY))
      throw new CliError(`${options.input} holds no installation to restore`);
    const report = await restoreInstallation({
      target: raw,
      open: () => createReadStream(options.input),
      keys: {
        header,
        unseal: (keys) =>
          unsealOffline(keys, ctx.io, {
            autoUnseal: config.seal.autoUnseal,
            what: "the backup's installation",
            hint: "wrong unseal keys, or a damaged backup header",
          }),
      },
      force: options.force === true,
      onProgress: (phase, p) => onProgress(phase === "verify" ? "Verifying" : "Restoring", p),
      targetLabel: `the storage of ${options.config}`,
    });
    return {
      entries: report.records,
      digest: report.digest,
      replaced: report.replaced,
      createdTime: report.header.createdAt.toISOString(),
      keyVersion: report.keyVersion,
      fileBytes: report.fileBytes,
    };
  } catch (error) {
    throw asCliError(error, "restore failed, nothing was changed");
  } finally {
    await raw.close();
  }
}
