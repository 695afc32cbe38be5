import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { usageError } from "../cli-error.js";
import { promptHidden } from "../input/prompt-hidden.js";
import { readLineFromStdin } from "../input/read-stdin.js";
import { formatKeyValueTable } from "../output/format-table.js";
import { printJson } from "../output/print-json.js";
import { sealStatusRows } from "../output/seal-status-rows.js";
import type { SealStatusBody } from "../output/seal-status-rows.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

interface UnsealOptions extends NetworkOptions {
  reset?: boolean;
}

/**
 * `egide operator unseal [KEY]`: submits one unseal key share. Without KEY it asks for it
 * without echo on a terminal, or reads one line from a pipe (so the key never has to appear
 * on the command line). `--reset` discards the shares submitted so far.
 */
export function registerOperatorUnsealCommand(operator: Command, ctx: CliContext): void {
  withNetworkOptions(
    operator
      .command("unseal")
      .description("submit one unseal key share (prompted without echo, or read from stdin, when KEY is not given)")
      .argument("[key]", "the unseal key share (base64 or hex); prefer the prompt or stdin: arguments are visible to other users")
      .option("--reset", "discard the key shares submitted so far"),
  ).action(async (keyArgument: string | undefined, options: UnsealOptions) => {
    if (options.reset && keyArgument !== undefined) throw usageError("--reset takes no key");
    const client = clientFor(options, ctx.io);
    let body: Record<string, unknown>;
    if (options.reset) {
      body = { reset: true };
    } else {
      const key = (keyArgument ?? (await readKey(ctx))).trim();
      if (key === "") throw usageError("no unseal key given");
      body = { key };
    }
    const status = (await client.put<SealStatusBody>("sys/unseal", body)).body ?? {};
    if (formatOf(options) === "json") printJson(ctx.io.stdout, status);
    else ctx.io.stdout.write(formatKeyValueTable(sealStatusRows(status)));
  });
}

/** The key from a hidden prompt on a terminal, or the first line of piped stdin. */
async function readKey(ctx: CliContext): Promise<string> {
  if (ctx.io.stdin.isTTY) return promptHidden(ctx.io, "Unseal Key (will be hidden):");
  const line = await readLineFromStdin(ctx.io.stdin);
  if (line === null) throw usageError("no unseal key given: pass KEY, type it at the prompt, or pipe it on stdin");
  return line;
}
