import type { TextSink } from "../cli-io.js";

/** Prints `value` as indented JSON and a newline (the `--format json` output of every command). */
export function printJson(out: TextSink, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}
