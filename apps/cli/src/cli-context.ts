import type { CliIo } from "./cli-io.js";

/**
 * What every command receives: the process's streams and environment, and the exit code of a
 * run that succeeded but must not exit 0 (`status` on a sealed server exits 2, as Vault's does).
 */
export interface CliContext {
  readonly io: CliIo;
  exitCode: number;
}
