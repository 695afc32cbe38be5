import { InvalidArgumentError } from "commander";

/**
 * Parsers of option values for commander: a bad value becomes commander's usage error
 * ("option '--cas <n>' argument 'x' is invalid. …"), exit code 2.
 */

/** A whole number ≥ 0 (`--cas`, `--version`, `--limit`). */
export function parseWholeNumber(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("expected a whole number");
  return Number(value);
}

/** A whole number ≥ 1 (`--key-shares`, `--key-threshold`). */
export function parsePositiveNumber(value: string): number {
  const number = parseWholeNumber(value);
  if (number < 1) throw new InvalidArgumentError("expected a whole number of at least 1");
  return number;
}

/** A comma-separated list of version numbers ≥ 1 (`--versions 1,2`); repeated options add up. */
export function parseVersionList(value: string, previous: number[] | undefined): number[] {
  const versions = value.split(",").map((part) => part.trim());
  if (versions.some((part) => !/^\d+$/.test(part) || Number(part) < 1)) {
    throw new InvalidArgumentError("expected version numbers separated by commas, such as 1,2");
  }
  return [...(previous ?? []), ...versions.map(Number)];
}

/** A repeatable option: every value, in order (`--policy a --policy b`, also `--policy a,b`). */
export function collectList(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(",")
      .map((part) => part.trim())
      .filter((part) => part !== ""),
  ];
}

/** A repeatable `KEY=VALUE` option (`--metadata team=ops`). */
export function collectKeyValue(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const split = value.indexOf("=");
  if (split <= 0) throw new InvalidArgumentError("expected KEY=VALUE");
  return { ...previous, [value.slice(0, split)]: value.slice(split + 1) };
}

/** A Vault duration: `90s`, `30m`, `1h`, `1h30m`, `7d`, or a number of seconds. */
export function parseDurationText(value: string): string {
  if (!/^(\d+|(\d+(\.\d+)?(ms|s|m|h|d))+)$/.test(value))
    throw new InvalidArgumentError('expected a duration such as "30m", "1h" or a number of seconds');
  return value;
}
