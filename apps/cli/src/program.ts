import { Command } from "commander";
import type { CliContext } from "./cli-context.js";
import { CLI_VERSION } from "./cli-version.js";
import { registerAuditCommands } from "./commands/audit-command.js";
import { registerKvCommands } from "./commands/kv-command.js";
import { registerOperatorCommands } from "./commands/operator-command.js";
import { registerPolicyCommands } from "./commands/policy-command.js";
import { registerServerCommand } from "./commands/server-command.js";
import { registerStatusCommand } from "./commands/status-command.js";
import { registerTokenCommands } from "./commands/token-command.js";

/** `egide kv get`: the full name of a command, for usage hints. */
function fullName(command: Command): string {
  const names: string[] = [];
  for (let current: Command | null = command; current !== null; current = current.parent) names.unshift(current.name());
  return names.join(" ");
}

/**
 * Routes commander's output to the run's streams, and makes each command's usage errors one
 * line: `egide: <commander's message> (see 'egide kv get --help')`.
 */
function configureOutput(command: Command, ctx: CliContext): void {
  command.configureOutput({
    writeOut: (text) => ctx.io.stdout.write(text),
    writeErr: (text) => ctx.io.stderr.write(text),
    outputError: (text, write) =>
      write(
        `egide: ${text
          .trim()
          .replace(/^error: /, "")
          .replace(/\s*\n\s*/g, " ")} (see '${fullName(command)} --help')\n`,
      ),
  });
  for (const sub of command.commands) configureOutput(sub, ctx);
}

/**
 * The `egide` program: every command, wired to `ctx`. Commander throws instead of exiting
 * (`exitOverride`), so that the caller decides exit codes; options are positional, so that a
 * subcommand's `--version` (kv get) is not the program's.
 */
export function createProgram(ctx: CliContext): Command {
  const program = new Command("egide")
    .description("Egide: run, operate and use a Vault-compatible secrets server")
    .version(CLI_VERSION, "-V, --version", "print the version of egide")
    .enablePositionalOptions()
    .exitOverride()
    .helpCommand(true)
    .addHelpText(
      "after",
      "\nEnvironment: EGIDE_ADDR (or VAULT_ADDR), EGIDE_TOKEN (or VAULT_TOKEN), EGIDE_CACERT (or VAULT_CACERT).\nExit codes: 0 success, 1 error, 2 bad arguments (also: status when sealed, kv get when there is no value).",
    );
  registerServerCommand(program, ctx);
  registerStatusCommand(program, ctx);
  registerOperatorCommands(program, ctx);
  registerKvCommands(program, ctx);
  registerTokenCommands(program, ctx);
  registerPolicyCommands(program, ctx);
  registerAuditCommands(program, ctx);
  configureOutput(program, ctx);
  return program;
}
