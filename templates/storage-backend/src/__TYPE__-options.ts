import { ConfigReader, DEFAULT_MAX_VALUE_BYTES } from "@egide/storage-core";

/** The largest `max_value_bytes` accepted. Lower it to your database's own request limit, if it has one. */
const MAX_VALUE_BYTES_LIMIT = 512 * 1024 * 1024;

/** Options of the __TYPE__ backend, in the programmatic (camelCase) form. */
export interface __Type__Options {
  /** Largest value accepted, in bytes (default 1 MiB, `DEFAULT_MAX_VALUE_BYTES`). */
  maxValueBytes?: number;
  // TODO: your database's options: address, timeouts, pool size, `passwordEnv`, …
}

/** {@link __Type__Options} with every default applied. */
export type Resolved__Type__Options = Required<__Type__Options>;

/** Fills in the defaults of programmatic options, with the checks of the configuration file. */
export function resolve__Type__Options(options: __Type__Options = {}): Resolved__Type__Options {
  const table: Record<string, unknown> = {};
  if (options.maxValueBytes !== undefined) table.max_value_bytes = options.maxValueBytes;
  return parse__Type__Config(table);
}

/**
 * Parses the `[storage.__TYPE__]` table of the server's configuration:
 *
 * ```toml
 * [storage.__TYPE__]
 * max_value_bytes = 1048576
 * ```
 *
 * Every problem is a `ConfigError` naming the option (`storage.__TYPE__.max_value_bytes: must be
 * at least 1, got 0`), and `finish()` refuses options nobody read, so a typo is an error rather
 * than a setting silently ignored. Take secrets from the environment only (`password_env =
 * "NAME"`: add an `env: Record<string, string | undefined>` parameter, which the definition's
 * `parseConfig` receives from the server), never as plaintext options, and keep them out of
 * every message.
 *
 * @param table the parsed table (`undefined` when the file has none)
 */
export function parse__Type__Config(table: unknown): Resolved__Type__Options {
  const config = new ConfigReader(table, "storage.__TYPE__");
  const options: Resolved__Type__Options = {
    maxValueBytes: config.integer("max_value_bytes", DEFAULT_MAX_VALUE_BYTES, { min: 1, max: MAX_VALUE_BYTES_LIMIT }),
  };
  // TODO: read your options here, e.g. `config.string("address", "127.0.0.1:1234")`,
  // `config.duration("timeout", "5s")`.
  config.finish();
  return options;
}
