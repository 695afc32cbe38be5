import { readFileSync } from "node:fs";
import { ConfigError, ConfigReader, DEFAULT_MAX_VALUE_BYTES, validateKey } from "@egide/storage-core";

/** Options of the etcd backend, in the programmatic (camelCase) form. */
export interface EtcdOptions {
  /** Client URLs of the cluster's members: `["https://10.0.0.1:2379", …]`, all `http` or all `https`. */
  endpoints: string[];
  /** The key namespace of this storage in etcd (default `"egide/"`); must end with `/`. */
  prefix?: string;
  /** etcd user for password authentication. */
  username?: string;
  /** Programmatic only: configuration files name an environment variable (`password_env`). */
  password?: string;
  /** CA certificates (PEM) that verify the members (default: the system's roots). */
  tlsCaFile?: string;
  /** Client certificate (PEM), for members that require one (`--client-cert-auth`). */
  tlsCertFile?: string;
  /** Key of {@link tlsCertFile} (PEM). */
  tlsKeyFile?: string;
  /** The longest one attempt on one member may take before it is given up and retried, in ms (default 5000). */
  dialTimeoutMs?: number;
  /** The longest one operation may take, retries included, in ms (default 15000). */
  requestTimeoutMs?: number;
  /** The largest value, in bytes (default 1 MiB). */
  maxValueBytes?: number;
  /** The server's `--max-request-bytes` (default etcd's 1.5 MiB): no request is sent beyond it. */
  maxRequestBytes?: number;
  /** The server's `--max-txn-ops` (default etcd's 128): larger transactions are nested to fit. */
  maxTxnOps?: number;
  /** Tries of a transaction that meets conflicts (default 20). */
  transactionAttempts?: number;
  /** Audit records older than this are deleted, in ms; 0 keeps them forever (default). */
  auditRetentionMs?: number;
  /** Offer `subscribeChanges` (the change feed, from an etcd watch); default true. */
  changeFeed?: boolean;
}

/** {@link EtcdOptions} with defaults applied and the TLS files read. */
export interface ResolvedEtcdOptions {
  endpoints: string[];
  /** Whether the endpoints are `https`. */
  tls: boolean;
  prefix: string;
  username: string | undefined;
  /** Not enumerable: never shown when the options are logged, listed or serialised. */
  password: string | undefined;
  tlsCaFile: string | undefined;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  /** The PEM contents of the TLS files. */
  tlsCa: Buffer | undefined;
  tlsCert: Buffer | undefined;
  /** The client's private key; not enumerable, as the password. */
  tlsKey: Buffer | undefined;
  dialTimeoutMs: number;
  requestTimeoutMs: number;
  maxValueBytes: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  transactionAttempts: number;
  auditRetentionMs: number;
  changeFeed: boolean;
}

/** etcd's default `--max-request-bytes` (1.5 MiB). */
export const ETCD_DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024;
/** etcd's default `--max-txn-ops`. */
export const ETCD_DEFAULT_MAX_TXN_OPS = 128;
/**
 * Room a put needs beside its value: the key (at most 1,024 bytes plus the prefix) and the
 * request's framing. A value may be at most `max_request_bytes` minus this.
 */
export const ETCD_REQUEST_OVERHEAD_BYTES = 4096;
const MAX_PREFIX_BYTES = 256;

/** Fills in the defaults and checks programmatic options (the same checks as the file's). */
export function resolveEtcdOptions(options: EtcdOptions): ResolvedEtcdOptions {
  const { password, ...rest } = options;
  const table: Record<string, unknown> = {
    endpoints: rest.endpoints,
    prefix: rest.prefix,
    username: rest.username,
    tls_ca_file: rest.tlsCaFile,
    tls_cert_file: rest.tlsCertFile,
    tls_key_file: rest.tlsKeyFile,
    dial_timeout: rest.dialTimeoutMs,
    request_timeout: rest.requestTimeoutMs,
    max_value_bytes: rest.maxValueBytes,
    max_request_bytes: rest.maxRequestBytes,
    max_txn_ops: rest.maxTxnOps,
    transaction_attempts: rest.transactionAttempts,
    audit_retention: rest.auditRetentionMs,
    change_feed: rest.changeFeed,
  };
  return parseEtcdConfig(table, {}, "etcd", password ?? null);
}

/**
 * Parses the `[storage.etcd]` table of the configuration file:
 *
 * ```toml
 * [storage.etcd]
 * endpoints = ["https://etcd1.internal:2379", "https://etcd2.internal:2379", "https://etcd3.internal:2379"]
 * prefix = "egide/"
 * username = "egide"
 * password_env = "EGIDE_ETCD_PASSWORD"
 * tls_ca_file = "/etc/egide/etcd-ca.crt"
 * dial_timeout = "5s"
 * request_timeout = "15s"
 * audit_retention = "90d"
 * ```
 *
 * The password never comes from the file: `password_env` names the variable that holds it.
 * Errors are `ConfigError`s naming the option; unknown options are refused.
 *
 * @param programmaticPassword used by {@link resolveEtcdOptions}: a password given in code
 *   (`null` when the table is a file's, which must use `password_env`)
 */
export function parseEtcdConfig(
  table: unknown,
  env: Record<string, string | undefined> = process.env,
  path = "storage.etcd",
  programmaticPassword: string | null = null,
): ResolvedEtcdOptions {
  const isTable = typeof table === "object" && table !== null && !Array.isArray(table);
  // `endpoints` is a list, which ConfigReader has no accessor for: it is read apart (its errors
  // still name the option).
  const { endpoints: endpointList, ...scalars } = isTable
    ? Object.fromEntries(Object.entries(table as Record<string, unknown>).filter(([, v]) => v !== undefined))
    : ({} as Record<string, unknown>);
  const config = new ConfigReader(isTable ? scalars : table, path);
  if (config.has("password")) {
    throw config.error(
      "password",
      "must not be in the configuration file; put it in an environment variable and name it with password_env",
    );
  }
  const { endpoints, tls } = parseEndpoints(config, endpointList);
  const prefix = parsePrefix(config);

  const username = config.string("username");
  const passwordEnv = config.string("password_env");
  let password: string | undefined = programmaticPassword ?? undefined;
  if (passwordEnv !== undefined) {
    if (passwordEnv.trim() === "") throw config.error("password_env", "must name an environment variable");
    password = env[passwordEnv];
    // The variable's name is not secret; its value is never put in a message.
    if (password === undefined) throw config.error("password_env", `names the environment variable ${passwordEnv}, which is not set`);
  }
  if (username !== undefined && username.trim() === "") throw config.error("username", "must not be empty");
  if (username !== undefined && password === undefined)
    throw config.error("password_env", `is required with username (the environment variable holding ${username}'s password)`);
  if (username === undefined && password !== undefined) throw config.error("username", "is required with password_env");

  const tlsCaFile = config.string("tls_ca_file");
  const tlsCertFile = config.string("tls_cert_file");
  const tlsKeyFile = config.string("tls_key_file");
  if ((tlsCertFile === undefined) !== (tlsKeyFile === undefined)) {
    throw config.error(tlsCertFile === undefined ? "tls_cert_file" : "tls_key_file", "tls_cert_file and tls_key_file go together");
  }
  for (const [option, file] of [
    ["tls_ca_file", tlsCaFile],
    ["tls_cert_file", tlsCertFile],
  ] as const) {
    if (file !== undefined && !tls) throw config.error(option, "is set, but the endpoints are http://; use https:// endpoints for TLS");
  }
  const tlsCa = readPem(config, "tls_ca_file", tlsCaFile, "CERTIFICATE");
  const tlsCert = readPem(config, "tls_cert_file", tlsCertFile, "CERTIFICATE");
  const tlsKey = readPem(config, "tls_key_file", tlsKeyFile, "PRIVATE KEY");

  const dialTimeoutMs = config.duration("dial_timeout", "5s");
  const requestTimeoutMs = config.duration("request_timeout", "15s");
  if (dialTimeoutMs <= 0) throw config.error("dial_timeout", "must be greater than zero");
  if (requestTimeoutMs <= 0) throw config.error("request_timeout", "must be greater than zero");
  if (dialTimeoutMs > requestTimeoutMs) throw config.error("dial_timeout", `must not exceed request_timeout (${requestTimeoutMs} ms)`);
  const maxRequestBytes = config.integer("max_request_bytes", ETCD_DEFAULT_MAX_REQUEST_BYTES, { min: 64 * 1024, max: 2 ** 31 - 1 });
  const maxValueBytes = config.integer("max_value_bytes", DEFAULT_MAX_VALUE_BYTES, { min: 1 });
  if (maxValueBytes > maxRequestBytes - ETCD_REQUEST_OVERHEAD_BYTES) {
    throw config.error(
      "max_value_bytes",
      `${maxValueBytes} does not fit in an etcd request: etcd refuses requests over max_request_bytes (${maxRequestBytes}, the server's --max-request-bytes), ` +
        `and a put needs ${ETCD_REQUEST_OVERHEAD_BYTES} bytes beside its value; use at most ${maxRequestBytes - ETCD_REQUEST_OVERHEAD_BYTES}, or raise --max-request-bytes and max_request_bytes together`,
    );
  }
  const options: ResolvedEtcdOptions = {
    endpoints,
    tls,
    prefix,
    username,
    password: undefined,
    tlsCaFile,
    tlsCertFile,
    tlsKeyFile,
    tlsCa,
    tlsCert,
    tlsKey,
    dialTimeoutMs,
    requestTimeoutMs,
    maxValueBytes,
    maxRequestBytes,
    maxTxnOps: config.integer("max_txn_ops", ETCD_DEFAULT_MAX_TXN_OPS, { min: 4, max: 1_000_000 }),
    transactionAttempts: config.integer("transaction_attempts", 20, { min: 1, max: 100 }),
    auditRetentionMs: config.duration("audit_retention", 0),
    changeFeed: config.boolean("change_feed", true),
  };
  config.finish();
  return withHiddenSecrets(options, password, tlsKey);
}

/**
 * Sets `password` and `tlsKey` as non-enumerable properties, so logging, inspecting, listing,
 * spreading or serialising the options never shows them, while `options.password` and
 * `options.tlsKey` still read them.
 */
export function withHiddenSecrets<T extends { password: string | undefined; tlsKey: Buffer | undefined }>(
  options: T,
  password: string | undefined,
  tlsKey: Buffer | undefined,
): T {
  Object.defineProperty(options, "password", { value: password, enumerable: false, writable: false, configurable: true });
  Object.defineProperty(options, "tlsKey", { value: tlsKey, enumerable: false, writable: false, configurable: true });
  return options;
}

function parseEndpoints(config: ConfigReader, list: unknown): { endpoints: string[]; tls: boolean } {
  if (list === undefined)
    throw config.error("endpoints", 'is required: the client URLs of the etcd members, e.g. ["http://127.0.0.1:2379"]');
  if (!Array.isArray(list) || list.length === 0 || list.some((entry) => typeof entry !== "string")) {
    throw config.error("endpoints", 'must be a non-empty list of URLs such as "https://etcd1.internal:2379"');
  }
  const endpoints: string[] = [];
  let schemes = new Set<string>();
  for (const entry of list as string[]) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw config.error("endpoints", `${JSON.stringify(entry)} is not a URL (http://host:2379 or https://host:2379)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw config.error("endpoints", `${JSON.stringify(entry)} must start with http:// or https://`);
    if (url.username !== "" || url.password !== "")
      throw config.error("endpoints", "must not hold credentials; use username and password_env");
    if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "")
      throw config.error("endpoints", `${JSON.stringify(entry)} must be a bare scheme://host:port`);
    if (url.hostname === "") throw config.error("endpoints", `${JSON.stringify(entry)} has no host`);
    const normalised = `${url.protocol}//${url.hostname}:${url.port === "" ? "2379" : url.port}`;
    if (endpoints.includes(normalised)) throw config.error("endpoints", `lists ${normalised} twice`);
    endpoints.push(normalised);
    schemes = new Set([...schemes, url.protocol]);
  }
  if (schemes.size > 1) throw config.error("endpoints", "must be all http:// or all https://");
  return { endpoints, tls: schemes.has("https:") };
}

function parsePrefix(config: ConfigReader): string {
  const prefix = config.string("prefix", "egide/");
  if (!prefix.endsWith("/"))
    throw config.error("prefix", `must end with "/" (a namespace such as "egide/"), got ${JSON.stringify(prefix)}`);
  if (Buffer.byteLength(prefix, "utf8") > MAX_PREFIX_BYTES) throw config.error("prefix", `must be at most ${MAX_PREFIX_BYTES} bytes`);
  try {
    // "a/b/" is a namespace when "a/b" would be a valid key: no empty, "." or ".." segment, no
    // control characters, no leading "/".
    validateKey(prefix.slice(0, -1));
  } catch (cause) {
    throw new ConfigError("INVALID_CONFIG", `${JSON.stringify(prefix)} is not a valid namespace: ${(cause as Error).message}`, {
      option: config.name("prefix"),
      cause,
    });
  }
  return prefix;
}

function readPem(config: ConfigReader, option: string, file: string | undefined, kind: string): Buffer | undefined {
  if (file === undefined) return undefined;
  let contents: Buffer;
  try {
    contents = readFileSync(file);
  } catch (cause) {
    throw new ConfigError("INVALID_CONFIG", `cannot read ${file}: ${(cause as Error).message}`, { option: config.name(option), cause });
  }
  if (!contents.includes(`-----BEGIN `) || !contents.includes(kind))
    throw config.error(option, `${file} holds no PEM ${kind.toLowerCase()}`);
  return contents;
}
