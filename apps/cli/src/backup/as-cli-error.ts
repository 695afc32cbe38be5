import { CliError } from "../cli-error.js";

/**
 * A failure of the backup library, the storage or the seal as the CLI's one-line error. Their
 * messages are written for operators and hold no secret; the code goes in front so scripts
 * and support can tell `TRUNCATED` from `CHUNK_INVALID`.
 */
export function asCliError(error: unknown, what: string): CliError {
  if (error instanceof CliError) return error;
  const code = (error as { code?: unknown })?.code;
  const message = (error as Error)?.message ?? String(error);
  return new CliError(`${what}: ${message}${typeof code === "string" ? ` [${code}]` : ""}`, { cause: error });
}
