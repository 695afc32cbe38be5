import { CliError, ExitCode } from "../cli-error.js";

/** What each error status means, as the first words of the message. */
const STATUS_LABELS: Readonly<Record<number, string>> = {
  400: "bad request",
  401: "unauthorized",
  403: "permission denied",
  404: "not found",
  405: "unsupported operation",
  409: "conflict",
  412: "precondition failed",
  413: "request too large",
  415: "unsupported media type",
  429: "too many requests",
  500: "internal server error",
  501: "not initialized",
  502: "bad gateway",
  503: "service unavailable",
};

/**
 * Vault's `errors` are sometimes Go multierror text ("1 error occurred:\n\t* unsupported
 * path\n\n"); one line on stderr wants just the messages.
 */
function flatten(errors: readonly string[], label: string): string {
  return errors
    .flatMap((error) => error.split("\n"))
    .map((line) => line.trim().replace(/^\* /, ""))
    .filter((line) => line !== "" && !/^\d+ errors? occurred:$/.test(line) && line.toLowerCase() !== label)
    .join("; ");
}

/**
 * An error status from the server: `label (status): server message`, for example
 * `permission denied (403)` or `bad request (400): check-and-set parameter did not match the
 * current version`. A sealed server reads `Egide is sealed (503)` whatever the server calls
 * itself. The server's message is left out when it only repeats the label.
 */
export class EgideApiError extends CliError {
  /** The HTTP status. */
  readonly status: number;
  /** The server's `errors` array (empty when it sent none). */
  readonly errors: readonly string[];
  /** The parsed response body (KV answers some 404s with metadata), or null. */
  readonly body: unknown;

  constructor(status: number, errors: readonly string[], body: unknown) {
    const label = STATUS_LABELS[status] ?? `HTTP ${status}`;
    const detail = flatten(errors, label);
    let message: string;
    if (status === 503 && /\bis sealed\b/i.test(detail)) {
      message = "Egide is sealed (503): unseal it with `egide operator unseal`";
    } else {
      message = detail === "" ? `${label} (${status})` : `${label} (${status}): ${detail}`;
    }
    super(message, { exitCode: ExitCode.ERROR });
    this.name = "EgideApiError";
    this.status = status;
    this.errors = errors;
    this.body = body;
  }
}
