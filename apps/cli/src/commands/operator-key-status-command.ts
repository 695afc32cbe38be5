import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { keyStatusText } from "../output/key-status-text.js";
import type { KeyStatusBody } from "../output/key-status-text.js";
import { printJson } from "../output/print-json.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

/** `egide operator key-status`: the encryption key's term, install time, and every key version. */
export function registerOperatorKeyStatusCommand(operator: Command, ctx: CliContext): void {
  withNetworkOptions(operator.command("key-status").description("show the encryption key's term and versions")).action(
    async (options: NetworkOptions) => {
      const response = await clientFor(options, ctx.io).get<{ data?: KeyStatusBody }>("sys/key-status");
      if (formatOf(options) === "json") printJson(ctx.io.stdout, response.body);
      else ctx.io.stdout.write(keyStatusText(response.body?.data ?? {}));
    },
  );
}
