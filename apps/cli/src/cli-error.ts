/** Exit codes of the `egide` command. */
export const ExitCode = {
  /** The command did what was asked. */
  OK: 0,
  /** The command failed: the server refused, could not be reached, or answered an error. */
  ERROR: 1,
  /**
   * Bad arguments (a usage error). Also, as in Vault's CLI: `status` on a sealed server and
   * `kv get` of a path with no value.
   */
  USAGE: 2,
} as const;

/**
 * An error the CLI reports as one line on stderr (`egide: <message>`) before exiting with
 * `exitCode`. Messages never hold a token or a secret.
 */
export class CliError extends Error {
  /** The process exit code. */
  readonly exitCode: number;

  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CliError";
    this.exitCode = options.exitCode ?? ExitCode.ERROR;
  }
}

/** A usage error (bad or missing arguments): exit code 2. */
export function usageError(message: string): CliError {
  return new CliError(message, { exitCode: ExitCode.USAGE });
}
