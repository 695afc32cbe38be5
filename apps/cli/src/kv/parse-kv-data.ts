import { usageError } from "../cli-error.js";
import type { CliIo } from "../cli-io.js";
import { readArgumentFile } from "../input/read-argument-file.js";
import { readAllStdin, withoutTrailingNewline } from "../input/read-stdin.js";

/**
 * The data of `kv put` and `kv patch` from their arguments, as Vault's CLI reads them:
 *
 * - `key=value`: a string (split at the first `=`, so values may contain `=`);
 * - `key=@file`: the file's contents, as they are;
 * - `key=-`: standard input, without one trailing line break;
 * - `-` alone: a JSON object on standard input; `@file` alone: a JSON object in the file.
 *
 * Standard input can be read only once; the same key twice is refused.
 */
export async function parseKvData(args: readonly string[], io: CliIo): Promise<Record<string, unknown>> {
  const data: Record<string, unknown> = {};
  let stdinUsed = false;
  const stdin = async (): Promise<string> => {
    if (stdinUsed) throw usageError("standard input can be read only once (several '-' arguments)");
    stdinUsed = true;
    return readAllStdin(io.stdin);
  };
  const set = (key: string, value: unknown) => {
    if (Object.hasOwn(data, key)) throw usageError(`the key ${JSON.stringify(key)} is given twice`);
    data[key] = value;
  };
  for (const arg of args) {
    const split = arg.indexOf("=");
    if (split < 0) {
      if (arg !== "-" && !arg.startsWith("@"))
        // The argument is not echoed: it may be a secret typed without its key.
        throw usageError("expected KEY=VALUE, KEY=@FILE, KEY=- or a JSON object (- or @FILE) after the path");
      const text = arg === "-" ? await stdin() : readArgumentFile(arg.slice(1));
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw usageError(`${arg === "-" ? "standard input" : arg.slice(1)} is not JSON`);
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw usageError(`${arg === "-" ? "standard input" : arg.slice(1)} must hold a JSON object`);
      for (const [key, value] of Object.entries(parsed)) set(key, value);
      continue;
    }
    const key = arg.slice(0, split);
    const value = arg.slice(split + 1);
    if (key === "") throw usageError("a KEY=VALUE argument has no key before '='");
    if (value === "-") set(key, withoutTrailingNewline(await stdin()));
    else if (value.startsWith("@")) set(key, readArgumentFile(value.slice(1)));
    else set(key, value);
  }
  return data;
}
