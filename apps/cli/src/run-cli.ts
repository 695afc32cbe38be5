import { CommanderError } from "commander";
import type { CliContext } from "./cli-context.js";
import { CliError, ExitCode } from "./cli-error.js";
import { processIo } from "./cli-io.js";
import type { CliIo } from "./cli-io.js";
import { normalizeSingleDashOptions } from "./normalize-single-dash-options.js";
import { createProgram } from "./program.js";

/** A message as one line (server messages may hold line breaks). */
function oneLine(message: string): string {
  return message.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

/**
 * Runs `egide` with `argv` (without the node and script paths) and returns the exit code:
 * 0 on success; 2 for usage errors (commander has printed its message); otherwise the
 * {@link CliError}'s code after printing `egide: <message>` on stderr, or 1 for anything
 * unexpected.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const ctx: CliContext = { io, exitCode: ExitCode.OK };
  const program = createProgram(ctx);
  try {
    await program.parseAsync(normalizeSingleDashOptions(argv, program), { from: "user" });
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; a group called without a subcommand shows its help and
      // counts, like every other commander error, as a usage error.
      return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    if (error instanceof CliError) {
      io.stderr.write(`egide: ${oneLine(error.message)}\n`);
      return error.exitCode;
    }
    io.stderr.write(`egide: unexpected error: ${oneLine((error as Error)?.message ?? String(error))}\n`);
    return ExitCode.ERROR;
  }
}
