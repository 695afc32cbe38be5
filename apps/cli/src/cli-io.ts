/** An output stream of the CLI; `isTTY` decides prompts and trailing newlines. */
export type TextSink = NodeJS.WritableStream & { isTTY?: boolean };

/** An input stream of the CLI; `isTTY` decides whether to prompt or to read a line. */
export type TextSource = NodeJS.ReadableStream & { isTTY?: boolean };

/**
 * The process around a CLI run: its streams and environment. Commands take it instead of
 * touching `process` so that the program can run embedded or in tests.
 */
export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  stdin: TextSource;
  env: Readonly<Record<string, string | undefined>>;
}

/** The real process's streams and environment. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
