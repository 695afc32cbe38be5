import { InvalidArgumentError } from "commander";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { parsePositiveNumber, parseWholeNumber } from "../input/argument-parsers.js";
import { parseTimeBound } from "../input/parse-time-bound.js";
import { formatTable } from "../output/format-table.js";
import { formatValue } from "../output/format-value.js";
import { printJson } from "../output/print-json.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

interface AuditListOptions extends NetworkOptions {
  since?: string;
  until?: string;
  path?: string;
  requestId?: string;
  operation?: string;
  failed?: boolean;
  afterId?: number;
  limit?: number;
}

/** One row of `GET /v1/sys/audit-log`. */
interface AuditEntryBody {
  id?: number;
  timestamp?: string;
  operation?: string;
  path?: string;
  source_ip?: string | null;
  user_id?: string | null;
  request_id?: string;
  success?: boolean;
  error_message?: string | null;
  metadata?: { status?: number; method?: string; display_name?: string } | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `egide audit list`: the server's audit log (`GET /v1/sys/audit-log`; needs `read` and `sudo`). */
export function registerAuditCommands(program: Command, ctx: CliContext): Command {
  const audit = program.command("audit").description("read the audit log");

  withNetworkOptions(audit.command("list").description("list audit rows, oldest first (at most --limit, default 1000)"))
    .option("--since <time>", "rows at or after: a duration back from now (1h, 30m, 2d) or an RFC 3339 time", (value: string) =>
      parseTimeBound(value),
    )
    .option("--until <time>", "rows before: a duration back from now or an RFC 3339 time", (value: string) => parseTimeBound(value))
    .option("--path <prefix>", "rows whose path starts with this (literally)")
    .option("--request-id <id>", "the row of one request (the request_id of an API answer)", (value: string) => {
      if (!UUID.test(value)) throw new InvalidArgumentError("expected a request id (a UUID)");
      return value;
    })
    .option("--operation <operation>", "rows of one operation: read, create, update, patch, delete, list")
    .option("--failed", "only rows of refused or failed requests")
    .option("--after-id <id>", "rows after this id (to page: the last id of the previous page)", parseWholeNumber)
    .option("--limit <n>", "the most rows to return (server default 1000, at most 10000)", parsePositiveNumber)
    .action(async (options: AuditListOptions) => {
      const query = {
        since: options.since,
        until: options.until,
        path_prefix: options.path,
        request_id: options.requestId,
        operation: options.operation,
        success: options.failed ? false : undefined,
        after_id: options.afterId,
        limit: options.limit,
      };
      const body = (await clientFor(options, ctx.io).get<{ data?: { entries?: AuditEntryBody[] } }>("sys/audit-log", query)).body;
      if (formatOf(options) === "json") {
        printJson(ctx.io.stdout, body);
        return;
      }
      const entries = body?.data?.entries ?? [];
      ctx.io.stdout.write(
        formatTable(
          ["ID", "Time", "Operation", "Path", "Status", "Request ID", "Error"],
          entries.map((entry) => [
            formatValue(entry.id),
            formatValue(entry.timestamp),
            formatValue(entry.operation),
            formatValue(entry.path),
            `${entry.success ? "ok" : "failed"}${entry.metadata?.status === undefined ? "" : ` ${entry.metadata.status}`}`,
            formatValue(entry.request_id),
            entry.error_message ?? "",
          ]),
        ),
      );
    });

  return audit;
}
