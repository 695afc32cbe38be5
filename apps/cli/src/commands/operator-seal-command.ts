import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { printJson } from "../output/print-json.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

/** `egide operator seal`: seals the server (needs `sudo` on `sys/seal`). */
export function registerOperatorSealCommand(operator: Command, ctx: CliContext): void {
  withNetworkOptions(operator.command("seal").description("seal the server: it serves nothing until unsealed again")).action(
    async (options: NetworkOptions) => {
      await clientFor(options, ctx.io).put("sys/seal");
      if (formatOf(options) === "json") printJson(ctx.io.stdout, { sealed: true });
      else ctx.io.stdout.write("Success! Egide is sealed.\n");
    },
  );
}
