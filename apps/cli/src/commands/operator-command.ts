import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { registerOperatorBackupCommand } from "./operator-backup-command.js";
import { registerOperatorInitCommand } from "./operator-init-command.js";
import { registerOperatorKeyStatusCommand } from "./operator-key-status-command.js";
import { registerOperatorMigrateCommand } from "./operator-migrate-command.js";
import { registerOperatorRestoreCommand } from "./operator-restore-command.js";
import { registerOperatorRotateCommand } from "./operator-rotate-command.js";
import { registerOperatorSealCommand } from "./operator-seal-command.js";
import { registerOperatorUnsealCommand } from "./operator-unseal-command.js";

/** `egide operator …`: the commands that run the installation rather than use it. */
export function registerOperatorCommands(program: Command, ctx: CliContext): Command {
  const operator = program
    .command("operator")
    .description("initialise, unseal, seal and rotate the server; back it up, restore it, migrate its storage");
  registerOperatorInitCommand(operator, ctx);
  registerOperatorUnsealCommand(operator, ctx);
  registerOperatorSealCommand(operator, ctx);
  registerOperatorRotateCommand(operator, ctx);
  registerOperatorKeyStatusCommand(operator, ctx);
  registerOperatorBackupCommand(operator, ctx);
  registerOperatorRestoreCommand(operator, ctx);
  registerOperatorMigrateCommand(operator, ctx);
  return operator;
}
