import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { CliError, ExitCode, usageError } from "../cli-error.js";
import { EgideApiError } from "../client/egide-api-error.js";
import type { ApiResponse, EgideClient } from "../client/egide-client.js";
import { parseVersionList, parseWholeNumber } from "../input/argument-parsers.js";
import { kvApiPath, kvDisplayPath, locateKv, requireKey } from "../kv/kv-location.js";
import type { KvLocation } from "../kv/kv-location.js";
import { keyMetadataText, secretText, writtenSecretText } from "../kv/kv-secret-text.js";
import type { KvVersionMetadata } from "../kv/kv-secret-text.js";
import { parseKvData } from "../kv/parse-kv-data.js";
import { formatTable } from "../output/format-table.js";
import { printDone } from "../output/print-done.js";
import { printJson } from "../output/print-json.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

interface KvOptions extends NetworkOptions {
  mount?: string;
}

interface KvWriteOptions extends KvOptions {
  cas?: number;
}

interface KvGetOptions extends KvOptions {
  version?: number;
  field?: string;
}

interface KvVersionsOptions extends KvOptions {
  versions?: number[];
}

/** A KV version 2 read: the version's data and metadata. */
interface KvReadBody {
  data?: { data?: Record<string, unknown> | null; metadata?: KvVersionMetadata | null } | null;
}

/**
 * `egide kv …`: KV version 2 secrets at `MOUNT/KEY` paths (`secret/app`), found as Vault's
 * CLI finds them (see {@link locateKv}): put, patch, get, list, delete, undelete, destroy, and
 * `metadata get|delete`.
 */
export function registerKvCommands(program: Command, ctx: CliContext): Command {
  const kv = program.command("kv").description("read and write secrets in KV version 2 mounts (paths such as secret/app)");

  /** A kv subcommand with the network options and `--mount`. */
  const subcommand = (parent: Command, name: string, description: string) =>
    withNetworkOptions(parent.command(name).description(description)).option(
      "--mount <mount>",
      "the mount, when PATH is the key below it (default: found from PATH)",
    );

  /** Client and location of a kv subcommand, the key required. */
  const open = async (path: string, options: KvOptions, keyRequired = true): Promise<{ client: EgideClient; location: KvLocation }> => {
    const client = clientFor(options, ctx.io);
    const location = await locateKv(client, path, options.mount);
    return { client, location: keyRequired ? requireKey(location) : location };
  };

  subcommand(kv, "put", "write a new version of a secret (all its keys)")
    .argument("<path>", "the secret, such as secret/app")
    .argument("[data...]", "KEY=VALUE, KEY=@FILE (the file's contents), KEY=- (stdin); or - / @FILE with a JSON object")
    .option(
      "--cas <version>",
      "check-and-set: write only if the current version is this one (0: only if it does not exist)",
      parseWholeNumber,
    )
    .action(async (path: string, args: string[], options: KvWriteOptions) => {
      if (args.length === 0) throw usageError("no data given: pass KEY=VALUE arguments (kv put deletes every key it is not given)");
      const data = await parseKvData(args, ctx.io);
      const { client, location } = await open(path, options);
      const body = { data, ...(options.cas === undefined ? {} : { options: { cas: options.cas } }) };
      const response = await client.put<{ data?: KvVersionMetadata }>(kvApiPath(location, "data"), body);
      printWritten(ctx, options, kvDisplayPath(location, "data"), response.body);
    });

  subcommand(kv, "patch", "change some keys of a secret, keeping the others (a new version)")
    .argument("<path>", "the secret, such as secret/app")
    .argument("<data...>", "KEY=VALUE, KEY=@FILE, KEY=-; or - / @FILE with a JSON object (null deletes a key)")
    .option("--cas <version>", "check-and-set: patch only if the current version is this one", parseWholeNumber)
    .action(async (path: string, args: string[], options: KvWriteOptions) => {
      const data = await parseKvData(args, ctx.io);
      const { client, location } = await open(path, options);
      const body = { data, ...(options.cas === undefined ? {} : { options: { cas: options.cas } }) };
      let response: ApiResponse<{ data?: KvVersionMetadata }>;
      try {
        response = await client.patch<{ data?: KvVersionMetadata }>(kvApiPath(location, "data"), body);
      } catch (error) {
        throw notFoundAsNoValue(error, kvDisplayPath(location, "data"));
      }
      printWritten(ctx, options, kvDisplayPath(location, "data"), response.body);
    });

  subcommand(kv, "get", "read a secret (the latest version, or --version N)")
    .argument("<path>", "the secret, such as secret/app")
    .option("--version <n>", "the version to read (default: the latest)", parseWholeNumber)
    .option("--field <name>", "print only this key's value (nothing else, no newline when piped)")
    .action(async (path: string, options: KvGetOptions) => {
      const { client, location } = await open(path, options);
      const display = kvDisplayPath(location, "data");
      let body: KvReadBody | null;
      try {
        body = (
          await client.get<KvReadBody>(
            kvApiPath(location, "data"),
            options.version === undefined ? undefined : { version: options.version },
          )
        ).body;
      } catch (error) {
        // A deleted or destroyed version answers 404 with its metadata.
        const metadata =
          error instanceof EgideApiError && error.status === 404 ? (error.body as KvReadBody | null)?.data?.metadata : undefined;
        if (metadata === undefined || metadata === null) throw notFoundAsNoValue(error, display);
        if (formatOf(options) === "json") printJson(ctx.io.stdout, error instanceof EgideApiError ? error.body : null);
        else ctx.io.stdout.write(writtenSecretText(display, metadata));
        const state = metadata.destroyed === true ? "destroyed" : "deleted";
        throw new CliError(`version ${String(metadata.version ?? "?")} of ${display} is ${state}: it has no data`, {
          exitCode: ExitCode.USAGE,
        });
      }
      const data = body?.data?.data ?? {};
      const metadata = body?.data?.metadata ?? {};
      if (options.field !== undefined) {
        if (!Object.hasOwn(data, options.field)) throw new CliError(`the secret at ${display} has no key ${JSON.stringify(options.field)}`);
        const value = data[options.field];
        if (formatOf(options) === "json") printJson(ctx.io.stdout, value);
        else ctx.io.stdout.write(`${typeof value === "string" ? value : JSON.stringify(value)}${ctx.io.stdout.isTTY ? "\n" : ""}`);
        return;
      }
      if (formatOf(options) === "json") printJson(ctx.io.stdout, body);
      else ctx.io.stdout.write(secretText(display, metadata, data));
    });

  subcommand(kv, "list", "list the keys below a path (names ending in / hold more keys)")
    .argument("<path>", "a mount or a folder, such as secret/ or secret/team")
    .action(async (path: string, options: KvOptions) => {
      const { client, location } = await open(path, options, false);
      const display = kvDisplayPath(location, "metadata");
      let body: { data?: { keys?: string[] } } | null;
      try {
        body = (await client.list<{ data?: { keys?: string[] } }>(kvApiPath(location, "metadata"))).body;
      } catch (error) {
        throw notFoundAsNoValue(error, display);
      }
      if (formatOf(options) === "json") printJson(ctx.io.stdout, body);
      else
        ctx.io.stdout.write(
          formatTable(
            ["Keys"],
            (body?.data?.keys ?? []).map((key) => [key]),
          ),
        );
    });

  subcommand(kv, "delete", "soft-delete the latest version, or --versions (undelete can bring them back)")
    .argument("<path>", "the secret, such as secret/app")
    .option("--versions <list>", "the versions to delete, such as 1,2 (default: the latest)", parseVersionList)
    .action(async (path: string, options: KvVersionsOptions) => {
      const { client, location } = await open(path, options);
      if (options.versions === undefined) {
        await client.delete(kvApiPath(location, "data"));
        printDone(ctx.io.stdout, formatOf(options), `Success! Data deleted (if it existed) at: ${kvDisplayPath(location, "data")}`, {
          path: kvDisplayPath(location, "data"),
        });
      } else {
        await client.post(kvApiPath(location, "delete"), { versions: options.versions });
        printDone(
          ctx.io.stdout,
          formatOf(options),
          `Success! Data deleted (if it existed) at: ${kvDisplayPath(location, "data")} (versions ${options.versions.join(", ")})`,
          {
            path: kvDisplayPath(location, "data"),
            versions: options.versions,
          },
        );
      }
    });

  for (const [name, verb, description] of [
    ["undelete", "undeleted", "restore soft-deleted versions"],
    ["destroy", "destroyed", "destroy versions for good: their data is erased and cannot come back"],
  ] as const) {
    subcommand(kv, name, description)
      .argument("<path>", "the secret, such as secret/app")
      .requiredOption("--versions <list>", `the versions to ${name}, such as 1,2`, parseVersionList)
      .action(async (path: string, options: KvVersionsOptions) => {
        const versions = options.versions ?? [];
        const { client, location } = await open(path, options);
        await client.post(kvApiPath(location, name), { versions });
        printDone(
          ctx.io.stdout,
          formatOf(options),
          `Success! Data ${verb} (if it existed) at: ${kvDisplayPath(location, "data")} (versions ${versions.join(", ")})`,
          {
            path: kvDisplayPath(location, "data"),
            versions,
          },
        );
      });
  }

  const metadata = kv.command("metadata").description("a key's metadata: its versions and settings");
  subcommand(metadata, "get", "show a key's metadata and versions")
    .argument("<path>", "the secret, such as secret/app")
    .action(async (path: string, options: KvOptions) => {
      const { client, location } = await open(path, options);
      const display = kvDisplayPath(location, "metadata");
      let body: { data?: Record<string, unknown> } | null;
      try {
        body = (await client.get<{ data?: Record<string, unknown> }>(kvApiPath(location, "metadata"))).body;
      } catch (error) {
        throw notFoundAsNoValue(error, display);
      }
      if (formatOf(options) === "json") printJson(ctx.io.stdout, body);
      else ctx.io.stdout.write(keyMetadataText(display, body?.data ?? {}));
    });
  subcommand(metadata, "delete", "delete a key entirely: every version and its metadata")
    .argument("<path>", "the secret, such as secret/app")
    .action(async (path: string, options: KvOptions) => {
      const { client, location } = await open(path, options);
      await client.delete(kvApiPath(location, "metadata"));
      printDone(ctx.io.stdout, formatOf(options), `Success! Data deleted (if it existed) at: ${kvDisplayPath(location, "metadata")}`, {
        path: kvDisplayPath(location, "metadata"),
      });
    });

  return kv;
}

/** Vault's "No value found" (exit 2) for a 404 without data; other errors unchanged. */
function notFoundAsNoValue(error: unknown, displayPath: string): unknown {
  if (error instanceof EgideApiError && error.status === 404)
    return new CliError(`no value found at ${displayPath}`, { exitCode: ExitCode.USAGE });
  return error;
}

/** The output of a write (`put`, `patch`): the new version's metadata. */
function printWritten(ctx: CliContext, options: NetworkOptions, displayPath: string, body: { data?: KvVersionMetadata } | null): void {
  if (formatOf(options) === "json") printJson(ctx.io.stdout, body);
  else ctx.io.stdout.write(writtenSecretText(displayPath, body?.data ?? {}));
}
