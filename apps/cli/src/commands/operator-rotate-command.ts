import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { CliError } from "../cli-error.js";
import { keyStatusText } from "../output/key-status-text.js";
import type { KeyStatusBody } from "../output/key-status-text.js";
import { printJson } from "../output/print-json.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

/**
 * `egide operator rotate`: a new encryption key version (existing records are rewrapped in the
 * background by the server); then prints the key status, as `vault operator rotate` does.
 */
export function registerOperatorRotateCommand(operator: Command, ctx: CliContext): void {
  withNetworkOptions(
    operator
      .command("rotate")
      .description("rotate the encryption key: new writes use a new key version, old records are rewrapped in the background"),
  ).action(async (options: NetworkOptions) => {
    const client = clientFor(options, ctx.io);
    await client.put("sys/rotate");
    let status: KeyStatusBody | undefined;
    try {
      status = (await client.get<{ data?: KeyStatusBody }>("sys/key-status")).body?.data;
    } catch (error) {
      // The rotation happened; a token allowed to rotate but not to read the key status
      // still succeeded, so this is only a warning.
      if (!(error instanceof CliError)) throw error;
      ctx.io.stderr.write(`egide: the key was rotated, but its status could not be read: ${error.message}\n`);
    }
    if (formatOf(options) === "json") {
      printJson(ctx.io.stdout, { rotated: true, ...(status === undefined ? {} : { key_status: status }) });
      return;
    }
    ctx.io.stdout.write("Success! Rotated key\n");
    if (status !== undefined) ctx.io.stdout.write(`\n${keyStatusText(status)}`);
  });
}
