import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { ExitCode } from "../cli-error.js";
import { formatKeyValueTable } from "../output/format-table.js";
import { printJson } from "../output/print-json.js";
import { sealStatusRows } from "../output/seal-status-rows.js";
import type { SealStatusBody } from "../output/seal-status-rows.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

/** The part of `/v1/sys/health` that `status` shows. */
interface HealthBody {
  storage?: { type?: string; status?: string; latency_ms?: number; error?: string };
}

/**
 * `egide status`: seal status and health. Exits 0 when unsealed, 2 when sealed or not
 * initialised (as `vault status` does), 1 when the server cannot be asked.
 */
export function registerStatusCommand(program: Command, ctx: CliContext): void {
  withNetworkOptions(
    program.command("status").description("show the server's seal status and health (exit 0 unsealed, 2 sealed, 1 error)"),
  ).action(async (options: NetworkOptions) => {
    const client = clientFor(options, ctx.io);
    const sealStatus = (await client.get<SealStatusBody>("sys/seal-status")).body ?? {};
    // Vault's query parameters make health answer 200 in every state, so its body is read
    // the same way sealed or not.
    const health = (await client.get<HealthBody>("sys/health", { sealedcode: 200, uninitcode: 200, storageunhealthycode: 200 })).body ?? {};
    if (formatOf(options) === "json") {
      printJson(ctx.io.stdout, { ...sealStatus, health });
    } else {
      const rows = sealStatusRows(sealStatus);
      const storage = health.storage;
      if (storage?.status !== undefined) {
        const detail =
          storage.status === "healthy" && storage.latency_ms !== undefined
            ? ` (${storage.latency_ms} ms)`
            : storage.error
              ? ` (${storage.error})`
              : "";
        rows.push(["Storage Health", `${storage.status}${detail}`]);
      }
      ctx.io.stdout.write(formatKeyValueTable(rows));
    }
    if (sealStatus.sealed !== false) ctx.exitCode = ExitCode.USAGE;
  });
}
