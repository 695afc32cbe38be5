/** The codes a {@link SealError} carries. Callers branch on `code`, never on the message. */
export const SealErrorCode = {
  /** The storage holds no seal configuration yet: run `initialize` first. */
  NOT_INITIALIZED: "NOT_INITIALIZED",
  /** `initialize` ran before on this storage. */
  ALREADY_INITIALIZED: "ALREADY_INITIALIZED",
  /** An argument is out of range or malformed (shares, threshold, options). */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** A share that is not one: wrong length, bad encoding. Progress is kept. */
  INVALID_SHARE: "INVALID_SHARE",
  /**
   * The shares (or the unseal key) do not open this installation. Deliberately says nothing
   * more: which share was wrong is not something the server can or should know.
   */
  UNSEAL_FAILED: "UNSEAL_FAILED",
  /** The operation needs the keys, and the barrier is sealed. */
  SEALED: "SEALED",
  /** A key version cannot be retired (it is active, too recent, or still in use). */
  KEY_VERSION_IN_USE: "KEY_VERSION_IN_USE",
  /** The auto-unseal key file or environment variable is missing, unsafe or malformed. */
  UNSEAL_KEY_SOURCE: "UNSEAL_KEY_SOURCE",
} as const;

/** One of the values of {@link SealErrorCode}. */
export type SealErrorCode = (typeof SealErrorCode)[keyof typeof SealErrorCode];

const SEAL_ERROR_BRAND = Symbol.for("@egide/crypto-envelope/SealError");

/** Errors of the seal manager's own operations (init, unseal, rotate, retire). */
export class SealError extends Error {
  /** What went wrong, as a stable code. */
  readonly code: SealErrorCode;

  constructor(code: SealErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "SealError";
    this.code = code;
    Object.defineProperty(this, SEAL_ERROR_BRAND, { value: true });
  }

  /** True for any SealError, including one from another copy of this package; with `code`, also checks it. */
  static isInstance(value: unknown, code?: SealErrorCode): value is SealError {
    if (typeof value !== "object" || value === null) return false;
    if ((value as Record<symbol, unknown>)[SEAL_ERROR_BRAND] !== true) return false;
    return code === undefined || (value as SealError).code === code;
  }
}
