/**
 * An error answered the way Vault answers: an HTTP status and `{"errors": [...]}`. Messages
 * are for API clients: they never hold a secret, a token or a stack trace.
 */
export class VaultError extends Error {
  /** The HTTP status code. */
  readonly status: number;
  /** The messages of the `errors` array. */
  readonly errors: string[];

  constructor(status: number, ...errors: string[]) {
    super(errors.join("; ") || `HTTP ${status}`);
    this.name = "VaultError";
    this.status = status;
    this.errors = errors;
  }
}

/** 400: the request is malformed. */
export const badRequest = (...errors: string[]): VaultError => new VaultError(400, ...errors);
/** 403: no token, an unknown token, or a policy that does not allow it (Vault says "permission denied" for all three). */
export const permissionDenied = (): VaultError => new VaultError(403, "permission denied");
/** 404: nothing at this path (Vault answers an empty `errors` array). */
export const notFound = (): VaultError => new VaultError(404);
/** 405: the path exists but not with this method. */
export const unsupportedOperation = (): VaultError => new VaultError(405, "1 error occurred:\n\t* unsupported operation\n\n");
/** 503 while sealed. */
export const sealedError = (): VaultError => new VaultError(503, "Vault is sealed");
