import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { usageError } from "../cli-error.js";
import { parsePositiveNumber } from "../input/argument-parsers.js";
import { printJson } from "../output/print-json.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

interface InitOptions extends NetworkOptions {
  keyShares: number;
  keyThreshold: number;
}

/** `PUT /v1/sys/init`'s answer. */
interface InitResponse {
  keys?: string[];
  keys_base64?: string[];
  root_token?: string;
}

/**
 * `egide operator init`: initialises the server and prints, once, the unseal key shares and
 * the root token (this command exists to show them), with a warning to store them apart.
 */
export function registerOperatorInitCommand(operator: Command, ctx: CliContext): void {
  withNetworkOptions(
    operator
      .command("init")
      .description("initialise a new server: prints its unseal keys and initial root token, once")
      .option("--key-shares <n>", "number of unseal key shares to create", parsePositiveNumber, 5)
      .option("--key-threshold <n>", "number of shares needed to unseal", parsePositiveNumber, 3),
  ).action(async (options: InitOptions) => {
    if (options.keyThreshold > options.keyShares) {
      throw usageError(`--key-threshold (${options.keyThreshold}) cannot exceed --key-shares (${options.keyShares})`);
    }
    const client = clientFor(options, ctx.io);
    const response = await client.put<InitResponse>("sys/init", {
      secret_shares: options.keyShares,
      secret_threshold: options.keyThreshold,
    });
    const body = response.body ?? {};
    if (formatOf(options) === "json") {
      printJson(ctx.io.stdout, body);
      return;
    }
    const keys = body.keys_base64 ?? body.keys ?? [];
    const lines = keys.map((key, index) => `Unseal Key ${index + 1}: ${key}`);
    lines.push("", `Initial Root Token: ${body.root_token ?? ""}`, "");
    lines.push(
      `Egide initialized with ${keys.length} key shares and a key threshold of ${options.keyThreshold}.`,
      "",
      "WARNING: store the unseal keys and the root token now, in separate safe places.",
      "They are shown only once: the server keeps no copy. Every restart seals the server,",
      `and ${options.keyThreshold} of these keys are needed to unseal it (egide operator unseal).`,
      "Without them the data cannot be recovered.",
    );
    ctx.io.stdout.write(`${lines.join("\n")}\n`);
  });
}
