import { CliError } from "../cli-error.js";
import type { TextSource } from "../cli-io.js";

/** Reads the whole of `stdin` as UTF-8 (for `key=-`, `policy write NAME -`). */
export async function readAllStdin(stdin: TextSource): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk, "utf8") : (chunk as Buffer));
  } catch (error) {
    throw new CliError(`cannot read standard input: ${(error as Error).message}`, { cause: error });
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Reads the first line of `stdin` (without its line break) and stops there: an unseal key
 * piped in. Null when stdin ends before any character.
 */
export async function readLineFromStdin(stdin: TextSource): Promise<string | null> {
  let text = "";
  try {
    for await (const chunk of stdin) {
      text += typeof chunk === "string" ? chunk : (chunk as Buffer).toString("utf8");
      const end = text.search(/\r?\n/);
      if (end >= 0) return text.slice(0, end);
    }
  } catch (error) {
    throw new CliError(`cannot read standard input: ${(error as Error).message}`, { cause: error });
  }
  return text === "" ? null : text;
}

/** Removes one trailing line break (`echo secret | egide kv put secret/app pass=-` stores `secret`). */
export function withoutTrailingNewline(text: string): string {
  return text.replace(/\r?\n$/, "");
}
