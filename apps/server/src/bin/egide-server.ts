#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConfigError } from "@egide/storage-core";
import { parseServerConfig } from "../config/parse-server-config.js";
import { startDevServer } from "../dev-server.js";
import { startServer } from "../start-server.js";
import type { RunningServer } from "../start-server.js";

const USAGE = `Usage:
  egide-server --config FILE    run with a TOML configuration
  egide-server --dev            dev mode: in-memory-like SQLite, unsealed, root token printed
Options:
  --dev-listen-address ADDR     dev mode address (default 127.0.0.1:8200)
  -h, --help                    this help`;

/** Runs the server until SIGINT/SIGTERM, then shuts down gracefully. */
export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        config: { type: "string" },
        dev: { type: "boolean" },
        "dev-listen-address": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (Boolean(args.dev) === (args.config !== undefined)) {
    process.stderr.write(`exactly one of --config FILE or --dev is required\n${USAGE}\n`);
    return 2;
  }
  let server: RunningServer;
  try {
    if (args.dev) {
      const dev = await startDevServer({ address: args["dev-listen-address"] ?? "127.0.0.1:8200" });
      server = dev;
      process.stdout.write(
        [
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
        ].join("\n") + "\n",
      );
    } else {
      const text = readFileSync(args.config as string, "utf8");
      server = await startServer({ config: parseServerConfig(text) });
      process.stdout.write(`Egide listening on ${server.url} (storage: ${server.context.raw.type})\n`);
    }
  } catch (error) {
    // Configuration errors name the option at fault; others are reported by message only.
    const message = ConfigError.isInstance(error) ? `configuration error: ${error.message}` : ((error as Error)?.message ?? String(error));
    process.stderr.write(`egide-server: ${message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  process.stdout.write("shutting down: finishing in-flight requests\n");
  await server.close();
  return 0;
}

const exitCode = await main(process.argv.slice(2));
if (exitCode !== 0) process.exitCode = exitCode;
