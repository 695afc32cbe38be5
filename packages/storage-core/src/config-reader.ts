import { ConfigError } from "./config-error.js";
import { parseDuration } from "./parse-duration.js";

/**
 * Reads one configuration table (such as `[storage.sqlite]`) with typed accessors whose
 * errors name the option in full. `finish()` rejects options nobody read, so a typo is an
 * error rather than a silently ignored setting.
 */
export class ConfigReader {
  readonly #table: Record<string, unknown>;
  readonly #path: string;
  readonly #read = new Set<string>();

  /**
   * @param table the parsed table; `undefined` reads as an empty table
   * @param path the table's name in the file, used in error messages (`storage.sqlite`)
   */
  constructor(table: unknown, path: string) {
    if (table !== undefined && (typeof table !== "object" || table === null || Array.isArray(table))) {
      throw new ConfigError("INVALID_CONFIG", "must be a table", { option: path });
    }
    this.#table = (table ?? {}) as Record<string, unknown>;
    this.#path = path;
  }

  /** The full name of an option, for messages. */
  name(option: string): string {
    return `${this.#path}.${option}`;
  }

  /** Whether the option is present. */
  has(option: string): boolean {
    return this.#table[option] !== undefined;
  }

  /** A string option. */
  string(option: string, fallback: string): string;
  string(option: string, fallback?: undefined): string | undefined;
  string(option: string, fallback?: string): string | undefined {
    const value = this.#take(option);
    if (value === undefined) return fallback;
    if (typeof value !== "string") throw this.error(option, "must be a string");
    return value;
  }

  /** A whole-number option within [min, max]. */
  integer(option: string, fallback: number, range: { min?: number; max?: number } = {}): number {
    const value = this.#take(option) ?? fallback;
    if (typeof value !== "number" || !Number.isInteger(value))
      throw this.error(option, `must be a whole number, got ${JSON.stringify(value)}`);
    if (range.min !== undefined && value < range.min) throw this.error(option, `must be at least ${range.min}, got ${value}`);
    if (range.max !== undefined && value > range.max) throw this.error(option, `must be at most ${range.max}, got ${value}`);
    return value;
  }

  /** A boolean option. */
  boolean(option: string, fallback: boolean): boolean {
    const value = this.#take(option) ?? fallback;
    if (typeof value !== "boolean") throw this.error(option, `must be true or false, got ${JSON.stringify(value)}`);
    return value;
  }

  /** One of `allowed`, compared case-insensitively and returned as listed. */
  oneOf<const T extends string>(option: string, allowed: readonly T[], fallback: T): T {
    const value = this.#take(option) ?? fallback;
    const found = typeof value === "string" ? allowed.find((a) => a.toLowerCase() === value.toLowerCase()) : undefined;
    if (found === undefined)
      throw this.error(option, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${JSON.stringify(value)}`);
    return found;
  }

  /** A duration in milliseconds ("10s", "5m", or a number of milliseconds). */
  duration(option: string, fallback: string | number): number {
    return parseDuration(this.#take(option) ?? fallback, this.name(option));
  }

  /** Throws for every option that no accessor read. */
  finish(): void {
    const unknown = Object.keys(this.#table).filter((k) => !this.#read.has(k));
    if (unknown.length > 0) {
      throw new ConfigError(
        "INVALID_CONFIG",
        `unknown option${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => this.name(k)).join(", ")}`,
        {
          option: this.name(unknown[0] as string),
        },
      );
    }
  }

  /** A ConfigError about `option`. */
  error(option: string, message: string): ConfigError {
    return new ConfigError("INVALID_CONFIG", message, { option: this.name(option) });
  }

  #take(option: string): unknown {
    this.#read.add(option);
    return this.#table[option];
  }
}
