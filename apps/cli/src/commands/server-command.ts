import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { usageError } from "../cli-error.js";

interface ServerOptions {
  config?: string;
  dev?: boolean;
  devListenAddress?: string;
}

/**
 * `egide server`: runs the server in this process, exactly as the `egide-server` binary does
 * (`runServer` of @egide/server), until SIGINT or SIGTERM.
 */
export function registerServerCommand(program: Command, ctx: CliContext): void {
  program
    .command("server")
    .description("run an Egide server: from a TOML configuration, or in dev mode")
    .option("--config <file>", "the server's TOML configuration")
    .option("--dev", "dev mode: a temporary SQLite database, initialised, unsealed, root token printed; never for production")
    .option("--dev-listen-address <address>", "dev mode's address (default 127.0.0.1:8200)")
    .action(async (options: ServerOptions) => {
      if (Boolean(options.dev) === (options.config !== undefined)) throw usageError("exactly one of --config FILE or --dev is required");
      if (options.devListenAddress !== undefined && !options.dev) throw usageError("--dev-listen-address needs --dev");
      const argv = options.dev
        ? ["--dev", ...(options.devListenAddress === undefined ? [] : ["--dev-listen-address", options.devListenAddress])]
        : ["--config", options.config as string];
      // Imported here: the server (Fastify, storage adapters) is not loaded by the other commands.
      const { runServer } = await import("@egide/server");
      ctx.exitCode = await runServer(argv, { stdout: ctx.io.stdout, stderr: ctx.io.stderr, name: "egide server", errorPrefix: "egide" });
    });
}
