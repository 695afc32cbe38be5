import { readFileSync } from "node:fs";
import { ConfigError, ConfigReader, DEFAULT_MAX_VALUE_BYTES } from "@egide/storage-core";

/** libpq's `sslmode` values, with libpq's meanings. */
export const POSTGRES_SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
/** One of {@link POSTGRES_SSL_MODES}. */
export type PostgresSslMode = (typeof POSTGRES_SSL_MODES)[number];

/** Options of the PostgreSQL backend, in the programmatic (camelCase) form. */
export interface PostgresOptions {
  /** `postgres://user@host:port/database?sslmode=…`; a password in it is refused. */
  url?: string;
  host?: string;
  port?: number;
  database?: string;
  username?: string;
  /** Programmatic only: configuration files name an environment variable (`password_env`). */
  password?: string;
  /** The schema holding Egide's tables (default "public"). */
  schema?: string;
  poolMin?: number;
  poolMax?: number;
  /** How long to wait for a connection, in ms (default 10000). */
  connectionTimeoutMs?: number;
  /** How long an idle connection is kept, in ms (default 600000). */
  idleTimeoutMs?: number;
  sslMode?: PostgresSslMode;
  /** Path of the CA certificates (PEM) that verify the server. */
  sslRootCert?: string;
  /** Server-side limit per statement in ms (default 30000; 0 = none). */
  statementTimeoutMs?: number;
  /** A statement becomes a named prepared statement after this many uses (default 5; 0 = never). */
  prepareThreshold?: number;
  /** Client-side deadline of each call in ms (default: statement timeout + 5 s). */
  operationTimeoutMs?: number;
  maxValueBytes?: number;
  /** Attempts of a transaction that hits serialization conflicts (default 10). */
  transactionAttempts?: number;
  /**
   * Keys a listing's first range read fetches (default 256); listings it cannot answer take the
   * recursive walk. Tuning only.
   */
  listProbeKeys?: number;
  /**
   * The change feed (default true): every write also sends a NOTIFY on the schema's channel,
   * and `subscribeChanges` listens for those of other instances. `false` sends no NOTIFY and
   * leaves `subscribeChanges` (and `changeFeedStatus`) off the backend.
   */
  changeFeed?: boolean;
  /**
   * Where the change feed's LISTEN connection goes, as `url` (no password in it): LISTEN needs a
   * session of its own, so behind PgBouncer in transaction mode point this at PostgreSQL
   * itself (or at a session-mode pool). Defaults to the main connection's settings.
   */
  listenUrl?: string;
  /** The LISTEN connection's host (default: `listenUrl`'s, else `host`). */
  listenHost?: string;
  /** The LISTEN connection's port (default: `listenUrl`'s, else `port`). */
  listenPort?: number;
}

/** {@link PostgresOptions} with defaults applied and the CA file read. */
export interface ResolvedPostgresOptions {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string | undefined;
  schema: string;
  poolMin: number;
  poolMax: number;
  connectionTimeoutMs: number;
  idleTimeoutMs: number;
  sslMode: PostgresSslMode;
  sslRootCert: string | undefined;
  /** The PEM text of `sslRootCert`. */
  sslRootCertPem: string | undefined;
  statementTimeoutMs: number;
  prepareThreshold: number;
  operationTimeoutMs: number;
  maxValueBytes: number;
  transactionAttempts: number;
  listProbeKeys: number;
  changeFeed: boolean;
  /** Where the change feed's LISTEN connection goes (the password and TLS files are the main connection's). */
  listen: PostgresListenTarget;
}

/** Where the change feed's dedicated LISTEN connection connects. */
export interface PostgresListenTarget {
  host: string;
  port: number;
  database: string;
  username: string;
  sslMode: PostgresSslMode;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Fills in the defaults and checks programmatic options. */
export function resolvePostgresOptions(options: PostgresOptions): ResolvedPostgresOptions {
  const { password, ...rest } = options;
  const table: Record<string, unknown> = {
    url: rest.url,
    host: rest.host,
    port: rest.port,
    database: rest.database,
    username: rest.username,
    schema: rest.schema,
    pool_min: rest.poolMin,
    pool_max: rest.poolMax,
    connection_timeout: rest.connectionTimeoutMs,
    idle_timeout: rest.idleTimeoutMs,
    ssl_mode: rest.sslMode,
    ssl_root_cert: rest.sslRootCert,
    statement_timeout: rest.statementTimeoutMs,
    prepare_threshold: rest.prepareThreshold,
    operation_timeout: rest.operationTimeoutMs,
    max_value_bytes: rest.maxValueBytes,
    transaction_attempts: rest.transactionAttempts,
    list_probe_keys: rest.listProbeKeys,
    change_feed: rest.changeFeed,
    listen_url: rest.listenUrl,
    listen_host: rest.listenHost,
    listen_port: rest.listenPort,
  };
  const resolved = parsePostgresConfig(table, {}, "postgresql");
  return withHiddenPassword({ ...resolved }, password ?? resolved.password);
}

/**
 * Parses the `[storage.postgresql]` table of the configuration file:
 *
 * ```toml
 * [storage.postgresql]
 * host = "localhost"
 * port = 5432
 * database = "egide"
 * username = "egide"
 * password_env = "EGIDE_DB_PASSWORD"
 * pool_min = 5
 * pool_max = 20
 * connection_timeout = "10s"
 * idle_timeout = "10m"
 * ssl_mode = "verify-full"
 * ssl_root_cert = "/etc/egide/ca.crt"
 * statement_timeout = "30s"
 * prepare_threshold = 5
 * change_feed = true
 * listen_host = "db-direct.internal"   # LISTEN needs a direct connection (not PgBouncer transaction mode)
 * ```
 *
 * The password never comes from the file: `password_env` names the variable that holds it.
 * Errors are `ConfigError`s naming the option.
 */
export function parsePostgresConfig(
  table: unknown,
  env: Record<string, string | undefined> = process.env,
  path = "storage.postgresql",
): ResolvedPostgresOptions {
  const defined =
    typeof table === "object" && table !== null && !Array.isArray(table)
      ? Object.fromEntries(Object.entries(table).filter(([, v]) => v !== undefined))
      : table;
  const config = new ConfigReader(defined, path);
  if (config.has("password")) {
    throw config.error(
      "password",
      "must not be in the configuration file; put it in an environment variable and name it with password_env",
    );
  }
  const fromUrl = parseUrl(config, "url");
  const host = config.string("host") ?? fromUrl.host ?? "localhost";
  const port = config.integer("port", fromUrl.port ?? 5432, { min: 1, max: 65535 });
  const database = config.string("database") ?? fromUrl.database ?? "egide";
  const username = config.string("username") ?? fromUrl.username ?? "egide";
  for (const [option, value] of [
    ["host", host],
    ["database", database],
    ["username", username],
  ] as const) {
    if (value.trim() === "") throw config.error(option, "must not be empty");
  }
  const passwordEnv = config.string("password_env");
  let password: string | undefined;
  if (passwordEnv !== undefined) {
    password = env[passwordEnv];
    if (password === undefined) throw config.error("password_env", `names the environment variable ${passwordEnv}, which is not set`);
  }
  const schema = config.string("schema", "public");
  if (!IDENTIFIER.test(schema)) throw config.error("schema", "must be a lower-case SQL identifier (letters, digits, _)");
  const poolMin = config.integer("pool_min", 5, { min: 0, max: 1000 });
  const poolMax = config.integer("pool_max", 20, { min: 1, max: 1000 });
  if (poolMin > poolMax) throw config.error("pool_min", `must not exceed pool_max (${poolMax})`);
  const sslMode = config.oneOf("ssl_mode", POSTGRES_SSL_MODES, fromUrl.sslMode ?? "prefer");
  const sslRootCert = config.string("ssl_root_cert");
  let sslRootCertPem: string | undefined;
  if (sslRootCert !== undefined) {
    try {
      sslRootCertPem = readFileSync(sslRootCert, "utf8");
    } catch (error) {
      throw new ConfigError("INVALID_CONFIG", `cannot read ${sslRootCert}: ${(error as Error).message}`, {
        option: config.name("ssl_root_cert"),
        cause: error,
      });
    }
    if (!sslRootCertPem.includes("-----BEGIN CERTIFICATE-----"))
      throw config.error("ssl_root_cert", `${sslRootCert} holds no PEM certificate`);
  }
  const statementTimeoutMs = config.duration("statement_timeout", "30s");
  const changeFeed = config.boolean("change_feed", true);
  const listen = parseListenTarget(config, { host, port, database, username, sslMode });
  const options: ResolvedPostgresOptions = {
    host,
    port,
    database,
    username,
    password,
    schema,
    poolMin,
    poolMax,
    connectionTimeoutMs: config.duration("connection_timeout", "10s"),
    idleTimeoutMs: config.duration("idle_timeout", "10m"),
    sslMode,
    sslRootCert,
    sslRootCertPem,
    statementTimeoutMs,
    prepareThreshold: config.integer("prepare_threshold", 5, { min: 0, max: 1_000_000 }),
    operationTimeoutMs: config.duration("operation_timeout", (statementTimeoutMs || 30_000) + 5000),
    maxValueBytes: config.integer("max_value_bytes", DEFAULT_MAX_VALUE_BYTES, { min: 1, max: 512 * 1024 * 1024 }),
    transactionAttempts: config.integer("transaction_attempts", 10, { min: 1, max: 100 }),
    listProbeKeys: config.integer("list_probe_keys", 256, { min: 1, max: 100_000 }),
    changeFeed,
    listen,
  };
  for (const option of ["connection_timeout", "operation_timeout"] as const) {
    const value = option === "connection_timeout" ? options.connectionTimeoutMs : options.operationTimeoutMs;
    if (value <= 0) throw config.error(option, "must be greater than zero");
  }
  config.finish();
  return withHiddenPassword(options, password);
}

/**
 * Sets `password` as a non-enumerable property, so logging, inspecting or serialising the
 * options (`console.log(backend.options)`, JSON) never shows it, while `options.password`
 * still reads it. Spreading the options drops it: pass it on explicitly.
 */
export function withHiddenPassword<T extends { password: string | undefined }>(options: T, password: string | undefined): T {
  Object.defineProperty(options, "password", { value: password, enumerable: false, writable: false, configurable: true });
  return options;
}

/**
 * The LISTEN connection's target: `listen_url` read like `url`, `listen_host` and `listen_port`
 * like `host` and `port`, each falling back to the main connection's (`main`).
 */
function parseListenTarget(config: ConfigReader, main: PostgresListenTarget): PostgresListenTarget {
  const fromUrl = parseUrl(config, "listen_url");
  const host = config.string("listen_host") ?? fromUrl.host ?? main.host;
  if (host.trim() === "") throw config.error("listen_host", "must not be empty");
  return {
    host,
    port: config.integer("listen_port", fromUrl.port ?? main.port, { min: 1, max: 65535 }),
    database: fromUrl.database ?? main.database,
    username: fromUrl.username ?? main.username,
    sslMode: fromUrl.sslMode ?? main.sslMode,
  };
}

function parseUrl(
  config: ConfigReader,
  option: "url" | "listen_url",
): { host?: string; port?: number; database?: string; username?: string; sslMode?: PostgresSslMode } {
  const text = config.string(option);
  if (text === undefined) return {};
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw config.error(option, "is not a URL (postgres://user@host:5432/database)");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:")
    throw config.error(option, "must start with postgres:// or postgresql://");
  if (url.password !== "") throw config.error(option, "must not contain a password; use password_env");
  const result: { host?: string; port?: number; database?: string; username?: string; sslMode?: PostgresSslMode } = {};
  if (url.hostname) result.host = decodeURIComponent(url.hostname).replace(/^\[(.*)\]$/, "$1");
  if (url.port) result.port = Number(url.port);
  if (url.pathname.length > 1) result.database = decodeURIComponent(url.pathname.slice(1));
  if (url.username) result.username = decodeURIComponent(url.username);
  for (const [name, value] of url.searchParams) {
    if (name !== "sslmode") throw config.error(option, `parameter ${name} is not supported; use the matching option`);
    const mode = POSTGRES_SSL_MODES.find((m) => m === value);
    if (!mode) throw config.error(option, `sslmode must be one of ${POSTGRES_SSL_MODES.join(", ")}`);
    result.sslMode = mode;
  }
  return result;
}
