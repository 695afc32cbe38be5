import { CliError } from "../cli-error.js";
import type { CliIo } from "../cli-io.js";

/**
 * Asks for a secret on the terminal without echoing it (the prompt goes to stderr, so that
 * stdout stays the command's output). Ctrl-C cancels with a CLI error.
 */
export async function promptHidden(io: CliIo, message: string): Promise<string> {
  // Loaded only when a prompt is shown: every other run starts faster without it.
  const { default: password } = await import("@inquirer/password");
  try {
    return await password({ message, mask: false }, { input: io.stdin, output: io.stderr });
  } catch (error) {
    if ((error as Error)?.name === "ExitPromptError" || (error as Error)?.name === "AbortPromptError") {
      throw new CliError("cancelled", { cause: error });
    }
    throw error;
  }
}
