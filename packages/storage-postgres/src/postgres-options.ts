import { readFileSync } from "node:fs";
import { ConfigError, ConfigReader, DEFAULT_MAX_VALUE_BYTES } from "@egide/storage-core";
import { TARGET_SESSION_ATTRS, formatHost, parseHostEntry, type PostgresHost, type TargetSessionAttrs } from "./postgres-hosts.js";

/** libpq's `sslmode` values, with libpq's meanings. */
export const POSTGRES_SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
/** One of {@link POSTGRES_SSL_MODES}. */
export type PostgresSslMode = (typeof POSTGRES_SSL_MODES)[number];

/** Options of the PostgreSQL backend, in the programmatic (camelCase) form. */
export interface PostgresOptions {
  /**
   * `postgres://user@host:port/database?sslmode=…`; a password in it is refused. Several hosts
   * are written as libpq does: `postgres://user@db1:5432,db2:5432/database?target_session_attrs=read-write`.
   */
  url?: string;
  host?: string;
  port?: number;
  /**
   * Several servers, tried in order (`"db1:5432"`, `"db2"`, `"[::1]:5433"`; an entry without a port
   * takes `port`): the pool connects to the first that accepts writes and moves to another when
   * that one fails or turns read-only. Not together with `host`.
   */
  hosts?: string[];
  /**
   * libpq's `target_session_attrs`: `read-write` (the default with several hosts) keeps only a
   * server where `SHOW transaction_read_only` is `off`; `any` (the default with one host) takes
   * the first that answers.
   */
  targetSessionAttrs?: TargetSessionAttrs;
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
  /** The first of {@link hosts}. */
  host: string;
  /** The first of {@link hosts}' port. */
  port: number;
  /** Every server to try, in order (one unless `hosts` or a multi-host `url` lists several). */
  hosts: PostgresHost[];
  targetSessionAttrs: TargetSessionAttrs;
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
  /**
   * Whether the LISTEN connection follows the pool to the host it writes to (true unless
   * `listen_host`, `listen_port` or a `listen_url` with a host or port names a target): with
   * several hosts its `host` and `port` are then only the first host's, and the connection goes
   * wherever the pool is.
   */
  listenFollowsWritable: boolean;
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
    hosts: rest.hosts,
    target_session_attrs: rest.targetSessionAttrs,
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
 * host = "localhost"                   # or hosts = ["db1:5432", "db2:5432"], tried in order
 * port = 5432
 * target_session_attrs = "read-write"  # the default with several hosts: only a writable server
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
  const isTable = typeof table === "object" && table !== null && !Array.isArray(table);
  // `hosts` is a list, which ConfigReader has no accessor for: it is read apart (its errors still
  // name the option).
  const { hosts: hostList, ...scalars } = isTable ? Object.fromEntries(Object.entries(table).filter(([, v]) => v !== undefined)) : {};
  const config = new ConfigReader(isTable ? scalars : table, path);
  if (config.has("password")) {
    throw config.error(
      "password",
      "must not be in the configuration file; put it in an environment variable and name it with password_env",
    );
  }
  const fromUrl = parseUrl(config, "url");
  const explicitHost = config.string("host");
  const explicitPort = config.has("port");
  const port = config.integer("port", fromUrl.port ?? 5432, { min: 1, max: 65535 });
  const hosts = parseHosts(config, hostList, explicitHost, explicitPort ? port : undefined, fromUrl);
  const host = (hosts[0] as PostgresHost).host;
  const targetSessionAttrs = config.oneOf(
    "target_session_attrs",
    TARGET_SESSION_ATTRS,
    fromUrl.targetSessionAttrs ?? (hosts.length > 1 ? "read-write" : "any"),
  );
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
  const firstPort = (hosts[0] as PostgresHost).port;
  const { listen, followsWritable } = parseListenTarget(config, { host, port: firstPort, database, username, sslMode });
  const options: ResolvedPostgresOptions = {
    host,
    port: firstPort,
    hosts,
    targetSessionAttrs,
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
    listenFollowsWritable: followsWritable,
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
function parseListenTarget(config: ConfigReader, main: PostgresListenTarget): { listen: PostgresListenTarget; followsWritable: boolean } {
  const fromUrl = parseUrl(config, "listen_url");
  if (fromUrl.hosts !== undefined) throw config.error("listen_url", "must name one host: the LISTEN connection goes to one server");
  if (fromUrl.targetSessionAttrs !== undefined)
    throw config.error("listen_url", "parameter target_session_attrs is not supported here; the LISTEN connection goes to one server");
  const explicitHost = config.string("listen_host") ?? fromUrl.host;
  const host = explicitHost ?? main.host;
  if (host.trim() === "") throw config.error("listen_host", "must not be empty");
  const explicitPort = config.has("listen_port") || fromUrl.port !== undefined;
  const listen = {
    host,
    port: config.integer("listen_port", fromUrl.port ?? main.port, { min: 1, max: 65535 }),
    database: fromUrl.database ?? main.database,
    username: fromUrl.username ?? main.username,
    sslMode: fromUrl.sslMode ?? main.sslMode,
  };
  // Any explicit LISTEN target (a host, or a port of its own) is taken as it is: it pins the connection.
  return { listen, followsWritable: explicitHost === undefined && !explicitPort };
}

/**
 * The hosts to try, in order: `hosts` (entries without a port take `port`), else `host`, else the
 * url's host or hosts, else localhost.
 */
function parseHosts(
  config: ConfigReader,
  list: unknown,
  host: string | undefined,
  port: number | undefined,
  fromUrl: ParsedUrl,
): PostgresHost[] {
  const defaultPort = port ?? fromUrl.port ?? 5432;
  if (list === undefined) {
    if (host !== undefined) {
      if (host.trim() === "") throw config.error("host", "must not be empty");
      return [{ host, port: defaultPort }];
    }
    if (fromUrl.hosts !== undefined) return port === undefined ? fromUrl.hosts : fromUrl.hosts.map((h) => ({ host: h.host, port }));
    return [{ host: fromUrl.host ?? "localhost", port: defaultPort }];
  }
  if (host !== undefined) throw config.error("hosts", "must not be set together with host; list every server in hosts");
  if (!Array.isArray(list) || list.length === 0 || list.some((entry) => typeof entry !== "string"))
    throw config.error("hosts", 'must be a non-empty list of "host:port" strings');
  const hosts: PostgresHost[] = [];
  for (const entry of list as string[]) {
    const parsed = parseHostEntry(entry, defaultPort);
    if (typeof parsed === "string") throw config.error("hosts", parsed);
    if (hosts.some((h) => h.host === parsed.host && h.port === parsed.port))
      throw config.error("hosts", `lists ${formatHost(parsed)} twice`);
    hosts.push(parsed);
  }
  return hosts;
}

interface ParsedUrl {
  host?: string;
  /** Set when the url lists several hosts (`h1:5432,h2:5433`). */
  hosts?: PostgresHost[];
  port?: number;
  database?: string;
  username?: string;
  sslMode?: PostgresSslMode;
  targetSessionAttrs?: TargetSessionAttrs;
}

function parseUrl(config: ConfigReader, option: "url" | "listen_url"): ParsedUrl {
  const text = config.string(option);
  if (text === undefined) return {};
  // WHATWG URLs take one host: a libpq host list (`h1:5432,h2:5433`) is taken out first and the
  // rest parsed with a placeholder host.
  const authority = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)(.*)$/i.exec(text);
  const userInfoEnd = authority ? (authority[2] as string).lastIndexOf("@") : -1;
  const hostList = authority ? (authority[2] as string).slice(userInfoEnd + 1) : "";
  const multiHost = hostList.includes(",");
  let url: URL;
  try {
    url = multiHost
      ? new URL(`${authority![1]}//${(authority![2] as string).slice(0, userInfoEnd + 1)}placeholder${authority![3]}`)
      : new URL(text);
  } catch {
    throw config.error(option, "is not a URL (postgres://user@host:5432/database)");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:")
    throw config.error(option, "must start with postgres:// or postgresql://");
  if (url.password !== "") throw config.error(option, "must not contain a password; use password_env");
  const result: ParsedUrl = {};
  if (multiHost) {
    const hosts: PostgresHost[] = [];
    for (const entry of hostList.split(",")) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(entry);
      } catch {
        throw config.error(option, `holds an invalid host ${JSON.stringify(entry)}`);
      }
      const parsed = parseHostEntry(decoded, 5432);
      if (typeof parsed === "string") throw config.error(option, parsed);
      hosts.push(parsed);
    }
    result.hosts = hosts;
    result.host = (hosts[0] as PostgresHost).host;
  } else {
    if (url.hostname) result.host = decodeURIComponent(url.hostname).replace(/^\[(.*)\]$/, "$1");
    if (url.port) result.port = Number(url.port);
  }
  if (url.pathname.length > 1) result.database = decodeURIComponent(url.pathname.slice(1));
  if (url.username) result.username = decodeURIComponent(url.username);
  for (const [name, value] of url.searchParams) {
    if (name === "target_session_attrs") {
      const attrs = TARGET_SESSION_ATTRS.find((a) => a === value);
      if (!attrs) throw config.error(option, `target_session_attrs must be one of ${TARGET_SESSION_ATTRS.join(", ")}`);
      result.targetSessionAttrs = attrs;
      continue;
    }
    if (name !== "sslmode") throw config.error(option, `parameter ${name} is not supported; use the matching option`);
    const mode = POSTGRES_SSL_MODES.find((m) => m === value);
    if (!mode) throw config.error(option, `sslmode must be one of ${POSTGRES_SSL_MODES.join(", ")}`);
    result.sslMode = mode;
  }
  return result;
}
