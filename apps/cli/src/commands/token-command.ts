import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { usageError } from "../cli-error.js";
import { collectKeyValue, collectList, parseDurationText } from "../input/argument-parsers.js";
import { readLineFromStdin } from "../input/read-stdin.js";
import { formatDuration } from "../output/format-duration.js";
import { formatKeyValueTable } from "../output/format-table.js";
import { formatValue } from "../output/format-value.js";
import { printDone } from "../output/print-done.js";
import { printJson } from "../output/print-json.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

interface TokenCreateOptions extends NetworkOptions {
  policy?: string[];
  ttl?: string;
  explicitMaxTtl?: string;
  orphan?: boolean;
  displayName?: string;
  metadata?: Record<string, string>;
  defaultPolicy: boolean;
  renewable: boolean;
  field?: string;
}

interface TokenRevokeOptions extends NetworkOptions {
  self?: boolean;
}

/** The `auth` block of `POST /v1/auth/token/create`. */
interface TokenAuth {
  client_token?: string;
  accessor?: string;
  policies?: string[];
  token_policies?: string[];
  lease_duration?: number;
  renewable?: boolean;
  orphan?: boolean;
}

/**
 * `egide token create|lookup|revoke`: Vault's token auth method. Only `create` prints a token
 * (showing it is its purpose); `lookup` leaves the looked-up token's id out of its output.
 */
export function registerTokenCommands(program: Command, ctx: CliContext): Command {
  const token = program.command("token").description("create, look up and revoke tokens");

  withNetworkOptions(token.command("create").description("create a token (a child of the calling token unless --orphan)"))
    .option("--policy <name>", "a policy of the new token (repeat, or separate with commas; default: the caller's)", collectList)
    .option("--ttl <duration>", "time to live, such as 30m or 24h (default: the server's default_lease_ttl)", parseDurationText)
    .option("--explicit-max-ttl <duration>", "a limit renewals cannot extend", parseDurationText)
    .option("--orphan", "no parent: it survives the revocation of the calling token (needs root or sudo)")
    .option("--display-name <name>", "a name shown in lookups and audit rows")
    .option("--metadata <key=value>", "metadata of the token (repeatable)", collectKeyValue)
    .option("--no-default-policy", "do not add the default policy")
    .option("--no-renewable", "the token cannot be renewed")
    .option("--field <name>", "print only this field of the result (token, token_accessor, …)")
    .action(async (options: TokenCreateOptions) => {
      const body: Record<string, unknown> = {};
      if (options.policy !== undefined) body.policies = options.policy;
      if (options.ttl !== undefined) body.ttl = options.ttl;
      if (options.explicitMaxTtl !== undefined) body.explicit_max_ttl = options.explicitMaxTtl;
      if (options.orphan) body.no_parent = true;
      if (options.displayName !== undefined) body.display_name = options.displayName;
      if (options.metadata !== undefined) body.meta = options.metadata;
      if (!options.defaultPolicy) body.no_default_policy = true;
      if (!options.renewable) body.renewable = false;
      const response = await clientFor(options, ctx.io).post<{ auth?: TokenAuth }>("auth/token/create", body);
      const auth = response.body?.auth ?? {};
      const fields: Record<string, unknown> = {
        token: auth.client_token,
        token_accessor: auth.accessor,
        token_duration: formatDuration(auth.lease_duration ?? 0),
        token_renewable: auth.renewable,
        token_policies: auth.token_policies ?? auth.policies,
        policies: auth.policies,
        orphan: auth.orphan,
      };
      if (options.field !== undefined) {
        if (!Object.hasOwn(fields, options.field))
          throw usageError(`no field ${JSON.stringify(options.field)}; fields: ${Object.keys(fields).join(", ")}`);
        const value = fields[options.field];
        if (formatOf(options) === "json") printJson(ctx.io.stdout, value);
        else ctx.io.stdout.write(`${formatValue(value)}${ctx.io.stdout.isTTY ? "\n" : ""}`);
        return;
      }
      if (formatOf(options) === "json") printJson(ctx.io.stdout, response.body);
      else ctx.io.stdout.write(formatKeyValueTable(Object.entries(fields).map(([key, value]) => [key, formatValue(value)])));
    });

  withNetworkOptions(token.command("lookup").description("show a token's properties (the calling token's without TOKEN)"))
    .argument("[token]", "the token to look up (- reads it from stdin); default: the calling token")
    .action(async (tokenArgument: string | undefined, options: NetworkOptions) => {
      const client = clientFor(options, ctx.io);
      const other = tokenArgument === undefined ? undefined : await tokenValue(ctx, tokenArgument);
      const response =
        other === undefined
          ? await client.get<{ data?: Record<string, unknown> }>("auth/token/lookup-self")
          : await client.post<{ data?: Record<string, unknown> }>("auth/token/lookup", { token: other });
      // lookup-self answers the token itself as `id`: not shown, the caller has it already and
      // outputs end up in logs.
      const body = response.body ?? {};
      const { id: _id, ...data } = body.data ?? {};
      if (formatOf(options) === "json") {
        printJson(ctx.io.stdout, { ...body, data });
        return;
      }
      const rows = Object.keys(data)
        .sort()
        .map(
          (key) =>
            [key, key === "ttl" || key === "creation_ttl" ? formatDuration(Number(data[key])) : formatValue(data[key])] as [string, string],
        );
      ctx.io.stdout.write(formatKeyValueTable(rows));
    });

  withNetworkOptions(token.command("revoke").description("revoke a token and its children (TOKEN, or the calling token with --self)"))
    .argument("[token]", "the token to revoke (- reads it from stdin)")
    .option("--self", "revoke the calling token")
    .action(async (tokenArgument: string | undefined, options: TokenRevokeOptions) => {
      if (options.self === true && tokenArgument !== undefined) throw usageError("give either TOKEN or --self, not both");
      if (options.self !== true && tokenArgument === undefined) throw usageError("a TOKEN to revoke, or --self, is required");
      const client = clientFor(options, ctx.io);
      if (options.self === true) await client.post("auth/token/revoke-self");
      else await client.post("auth/token/revoke", { token: await tokenValue(ctx, tokenArgument as string) });
      printDone(
        ctx.io.stdout,
        formatOf(options),
        options.self === true ? "Success! Revoked the calling token" : "Success! Revoked token (if it existed)",
        {
          revoked: options.self === true ? "self" : "token",
        },
      );
    });

  return token;
}

/** A token argument: itself, or the first line of stdin for `-`. */
async function tokenValue(ctx: CliContext, argument: string): Promise<string> {
  if (argument !== "-") return argument;
  const line = (await readLineFromStdin(ctx.io.stdin))?.trim() ?? "";
  if (line === "") throw usageError("no token on standard input");
  return line;
}
