import { randomBytes } from "node:crypto";
import { constants, existsSync, unlinkSync } from "node:fs";
import { open, readdir, rename, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CliError } from "../cli-error.js";

/** The temporary name of an output file being written. */
function partialName(output: string): string {
  return join(dirname(output), `.${basename(output)}.partial-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Whether process `pid` is running (signal 0 checks without signalling). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temporary files that writers of `output` killed outright (SIGKILL, power loss)
 * left behind: they are hidden (`.name.partial-PID-…`) and never the output itself.
 */
async function removeStalePartials(output: string): Promise<void> {
  const prefix = `.${basename(output)}.partial-`;
  let names: string[];
  try {
    names = await readdir(dirname(output));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split("-")[0]);
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) await unlink(join(dirname(output), name)).catch(() => undefined);
  }
}

/**
 * Writes `source` to `output` so that `output` appears only complete: the bytes go to a hidden
 * temporary file beside it (mode 0600), which is flushed to disk and renamed over `output` only
 * after the last byte; on any error, or on SIGINT/SIGTERM, the temporary file is removed. An
 * existing `output` is refused unless `overwrite`. Returns the bytes written.
 */
export async function writeFileAtomically(
  output: string,
  source: AsyncIterable<Uint8Array>,
  options: { overwrite?: boolean; onBytes?: (bytes: number) => void } = {},
): Promise<number> {
  await removeStalePartials(output);
  if (!options.overwrite && existsSync(output)) throw new CliError(`${output} already exists (use --force to replace it)`);
  const temporary = partialName(output);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (error) {
    throw new CliError(`cannot create ${temporary}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      cause: error,
    });
  }
  const onSignal = (signal: NodeJS.Signals) => {
    try {
      // Synchronous on purpose: the process exits right after.
      unlinkSync(temporary);
    } catch {
      // Already gone.
    } finally {
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let bytes = 0;
  try {
    for await (const piece of source) {
      await handle.write(piece);
      bytes += piece.byteLength;
      options.onBytes?.(bytes);
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temporary, output);
    // The rename itself must survive a crash: flush the directory entry too.
    const directory = await open(dirname(output), constants.O_RDONLY);
    await directory.sync().catch(() => undefined);
    await directory.close();
    return bytes;
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
