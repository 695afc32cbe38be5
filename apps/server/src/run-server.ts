import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConfigError } from "@egide/storage-core";
import { parseServerConfig } from "./config/parse-server-config.js";
import { startDevServer } from "./dev-server.js";
import { startServer } from "./start-server.js";
import type { RunningServer } from "./start-server.js";

/** Where {@link runServer} writes: anything with a `write(text)` (process streams by default). */
export interface RunServerIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** Options of {@link runServer} beyond its output streams. */
export interface RunServerOptions extends Partial<RunServerIo> {
  /**
   * The command name used in usage text and error lines ("egide-server" by default; the `egide`
   * CLI passes "egide server" for usage and "egide" for errors through `errorPrefix`).
   */
  name?: string;
  /** Prefix of error lines (default: `name`). */
  errorPrefix?: string;
}

function usage(name: string): string {
  return `Usage:
  ${name} --config FILE    run with a TOML configuration
  ${name} --dev            dev mode: in-memory-like SQLite, unsealed, root token printed
Options:
  --dev-listen-address ADDR     dev mode address (default 127.0.0.1:8200)
  -h, --help                    this help`;
}

/** The options in `argv`; throws on an unknown option or a missing value. */
function parseServerArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      dev: { type: "boolean" },
      "dev-listen-address": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  }).values;
}

type ServerArgs = ReturnType<typeof parseServerArgs>;

/**
 * Runs the server as the `egide-server` binary does: parses `argv` (`--config FILE` or `--dev`
 * with `--dev-listen-address`), starts it, prints its address (and in dev mode the root token
 * and unseal key, which dev mode exists to show), serves until SIGINT/SIGTERM, then shuts down
 * gracefully. Returns the exit code: 0 after a clean shutdown, 1 when the server could not
 * start, 2 for bad arguments. Shared by the `egide-server` bin and `egide server`.
 */
export async function runServer(argv: string[], options: RunServerOptions = {}): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const name = options.name ?? "egide-server";
  const errorPrefix = options.errorPrefix ?? name;
  let args: ServerArgs;
  try {
    args = parseServerArgs(argv);
  } catch (error) {
    stderr.write(`${(error as Error).message}\n${usage(name)}\n`);
    return 2;
  }
  if (args.help) {
    stdout.write(`${usage(name)}\n`);
    return 0;
  }
  if (Boolean(args.dev) === (args.config !== undefined)) {
    stderr.write(`exactly one of --config FILE or --dev is required\n${usage(name)}\n`);
    return 2;
  }
  let server: RunningServer;
  try {
    if (args.dev) {
      const dev = await startDevServer({ address: args["dev-listen-address"] ?? "127.0.0.1:8200" });
      server = dev;
      stdout.write(
        `${[
          "WARNING! dev mode is enabled! In this mode, Egide runs entirely on a temporary SQLite",
          "database, starts unsealed with a single unseal key, and its data is deleted on exit.",
          "Never use it in production.",
          "",
          `    Api Address: ${dev.url}`,
          `    Unseal Key: ${dev.unsealKey}`,
          `    Root Token: ${dev.rootToken}`,
          "",
          `    export VAULT_ADDR='${dev.url}'`,
          "",
        ].join("\n")}\n`,
      );
    } else {
      const text = readFileSync(args.config as string, "utf8");
      server = await startServer({ config: parseServerConfig(text) });
      stdout.write(`Egide listening on ${server.url} (storage: ${server.context.adapter.type})\n`);
    }
  } catch (error) {
    // Configuration errors name the option at fault; others are reported by message only.
    const message = ConfigError.isInstance(error) ? `configuration error: ${error.message}` : ((error as Error)?.message ?? String(error));
    stderr.write(`${errorPrefix}: ${message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  stdout.write("shutting down: finishing in-flight requests\n");
  await server.close();
  return 0;
}
