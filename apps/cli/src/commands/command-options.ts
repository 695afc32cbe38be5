import type { Command } from "commander";
import type { CliIo } from "../cli-io.js";
import { resolveConnectionOptions } from "../client/connection-options.js";
import type { ConnectionFlags } from "../client/connection-options.js";
import { EgideClient } from "../client/egide-client.js";
import { formatOption, outputFormat } from "../output/output-format.js";
import type { OutputFormat } from "../output/output-format.js";

/** The options every networked command has: the connection flags and `--format`. */
export interface NetworkOptions extends ConnectionFlags {
  format?: string;
}

/**
 * Adds `--address`, `--token`, `--ca-cert` and `--format` to a command that talks to a server.
 * They sit on each command (not on `egide` itself) so that they can follow the subcommand, as
 * Vault users write them.
 */
export function withNetworkOptions(command: Command): Command {
  return command
    .option("--address <url>", "server address (default: $EGIDE_ADDR, $VAULT_ADDR, http://127.0.0.1:8200)")
    .option(
      "--token <token>",
      "token to authenticate with (default: $EGIDE_TOKEN, $VAULT_TOKEN; prefer the variable: the command line is visible to other users)",
    )
    .option("--ca-cert <file>", "PEM file of the CA to trust for https (default: $EGIDE_CACERT, $VAULT_CACERT)")
    .addOption(formatOption());
}

/** The client for a command's parsed options and the environment. */
export function clientFor(options: NetworkOptions, io: CliIo): EgideClient {
  return new EgideClient(resolveConnectionOptions(options, io.env));
}

/** The output format a command's parsed options ask for. */
export function formatOf(options: NetworkOptions): OutputFormat {
  return outputFormat(options);
}
