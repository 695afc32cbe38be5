import type { Command } from "commander";

/** Every long option name (`--cas`) of `command` and its subcommands. */
function longOptionNames(command: Command, names = new Set<string>()): Set<string> {
  for (const option of command.options) if (option.long !== undefined) names.add(option.long);
  names.add("--help");
  for (const sub of command.commands) longOptionNames(sub, names);
  return names;
}

/**
 * Rewrites Vault's single-dash long options (`-cas=1`, `-cas 1`, `-format=json`, `-version=2`)
 * to the double-dash form commander parses, for the options this program knows. Single-letter
 * flags (`-h`, `-V`) and everything after `--` are left alone; since no command has other short
 * options, `-cas` cannot mean anything else.
 */
export function normalizeSingleDashOptions(argv: readonly string[], program: Command): string[] {
  const known = longOptionNames(program);
  const result: string[] = [];
  let passThrough = false;
  for (const arg of argv) {
    if (passThrough || arg === "--") {
      passThrough = true;
      result.push(arg);
      continue;
    }
    const match = /^-([a-z][a-z0-9-]+)(=.*)?$/s.exec(arg);
    if (match !== null && known.has(`--${match[1]}`)) result.push(`-${arg}`);
    else result.push(arg);
  }
  return result;
}
