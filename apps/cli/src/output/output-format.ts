import { Option } from "commander";

/** How a command prints its result: for people (tables) or for scripts (JSON). */
export type OutputFormat = "human" | "json";

/**
 * The `--format` option: `human` (default; `table` is accepted too, as Vault users type it) or
 * `json`. Anything else is a usage error, reported by commander.
 */
export function formatOption(): Option {
  return new Option("--format <format>", "output format: human or json").choices(["human", "table", "json"]).default("human");
}

/** The output format of parsed options (`table` is `human`). */
export function outputFormat(options: { format?: string }): OutputFormat {
  return options.format === "json" ? "json" : "human";
}
