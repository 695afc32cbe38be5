import type { SealManager } from "@egide/crypto-envelope";
import type { UnsealKeySource } from "@egide/crypto-envelope";
import { CliError } from "../cli-error.js";
import type { CliIo } from "../cli-io.js";
import { promptHidden } from "../input/prompt-hidden.js";
import { readAllStdin } from "../input/read-stdin.js";

/**
 * Unseals `seal` in this process for an offline command: with the configuration's auto-unseal
 * key when it has one; else with unseal keys typed at a hidden prompt (on a terminal) or read
 * from standard input, one per line (in scripts). Keys never come from the command line, where
 * other users could read them. Fails with one clear line when the keys do not open it.
 */
export async function unsealOffline(
  seal: SealManager,
  io: CliIo,
  options: { autoUnseal?: UnsealKeySource | undefined; what: string; hint?: string },
): Promise<void> {
  try {
    if (options.autoUnseal) {
      await seal.autoUnseal(options.autoUnseal);
      return;
    }
    const threshold = seal.status().t;
    if (io.stdin.isTTY) {
      for (let i = 1; seal.sealed; i++) {
        const key = await promptHidden(io, `Unseal key ${i} of ${threshold} for ${options.what}:`);
        await seal.unseal(key.trim());
      }
      return;
    }
    const lines = (await readAllStdin(io.stdin))
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== "");
    for (const line of lines) {
      if (!seal.sealed) break;
      await seal.unseal(line);
    }
    if (seal.sealed) {
      throw new CliError(`${options.what} needs ${threshold} unseal key(s) on standard input, one per line; ${lines.length} given`);
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    const hint = options.hint === undefined ? "" : ` (${options.hint})`;
    throw new CliError(`cannot unseal ${options.what}: ${(error as Error).message}${hint}`, { cause: error });
  }
}
