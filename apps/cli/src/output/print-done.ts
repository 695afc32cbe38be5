import type { TextSink } from "../cli-io.js";
import type { OutputFormat } from "./output-format.js";
import { printJson } from "./print-json.js";

/**
 * The output of a command the server answers without a body (204): one line for people, or
 * `{"success": true, …details}` for scripts.
 */
export function printDone(out: TextSink, format: OutputFormat, line: string, details: Record<string, unknown>): void {
  if (format === "json") printJson(out, { success: true, ...details });
  else out.write(`${line}\n`);
}
