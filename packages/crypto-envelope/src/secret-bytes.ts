import { inspect } from "node:util";

const REDACTED = "[redacted]";

/**
 * Key material in a Buffer that can be wiped, and that prints as `SecretBytes [redacted]`
 * through `util.inspect`, `console.log`, `JSON.stringify` and string conversion, so a key that
 * ends up in a log line shows nothing.
 */
export class SecretBytes {
  readonly #bytes: Buffer;
  #wiped = false;

  /** Takes ownership of `bytes` (no copy): wiping this wipes them. */
  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** The bytes themselves, for the cipher call that needs them. Fails after {@link wipe}. */
  get bytes(): Buffer {
    if (this.#wiped) throw new Error("secret bytes were wiped");
    return this.#bytes;
  }

  /** The length in bytes (not secret). */
  get length(): number {
    return this.#bytes.byteLength;
  }

  /** Whether {@link wipe} ran. */
  get wiped(): boolean {
    return this.#wiped;
  }

  /** Overwrites the bytes with zeros. Idempotent. */
  wipe(): void {
    this.#bytes.fill(0);
    this.#wiped = true;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `SecretBytes ${REDACTED}`;
  }
}
