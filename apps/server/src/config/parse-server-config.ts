import { assertPackageName, assertStorageType, ConfigError, ConfigReader } from "@egide/storage-core";
import { parse, TomlError } from "smol-toml";
import { byteSize } from "./byte-size.js";
import type { ListenerConfig, ServerConfig } from "./server-config.js";

const DEFAULT_ADDRESS = "127.0.0.1:8200";
const DEFAULT_MAX_REQUEST_BYTES = 2 * 1024 * 1024;
const DEFAULT_MAX_CONNECTIONS = 2048;
/** The cache's default byte budget: 64 MiB of ciphertext records. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/**
 * Parses the server's TOML configuration: the specification's `[storage]` with its adapter's
 * table (`[storage.sqlite]`, `[storage.postgresql]`, `[storage.<type>]` of any installed adapter,
 * validated later by the adapter itself; `package` names an adapter package outside the
 * conventions), plus
 * `[listener]`, `[seal]`, `[telemetry]`, `[audit]` and `[cache]`. Every error is a `ConfigError` naming
 * the option (or the line, for TOML syntax); unknown options are refused.
 */
export function parseServerConfig(text: string): ServerConfig {
  let document: Record<string, unknown>;
  try {
    document = parse(text) as Record<string, unknown>;
  } catch (cause) {
    const where = cause instanceof TomlError ? ` at line ${cause.line}, column ${cause.column}` : "";
    throw new ConfigError("INVALID_CONFIG", `the configuration is not valid TOML${where}: ${(cause as Error).message.split("\n")[0]}`, {
      cause,
    });
  }
  const storageTable = (readTable(document, "storage") ?? {}) as Record<string, unknown>;
  const type = storageTable.type;
  if (typeof type !== "string" || type === "") {
    throw new ConfigError("INVALID_CONFIG", 'is required and must be a string (for example type = "sqlite")', { option: "storage.type" });
  }
  // The type names a package (checked here, before anything is imported), and the adapter's
  // own table is validated by the adapter (its BackendDefinition.parseConfig).
  assertStorageType(type);
  const options = storageTable[type];
  const storage = new ConfigReader(without(storageTable, [type]), "storage");
  storage.string("type");
  const packageName = storage.string("package");
  if (packageName !== undefined) assertPackageName(packageName);
  const health = { intervalMs: storage.duration("health_interval", "5s"), timeoutMs: storage.duration("health_timeout", "2s") };
  // Another adapter's table is a mistake worth naming (a type switched, its old table left).
  for (const [other, value] of Object.entries(storageTable)) {
    if (other !== type && typeof value === "object" && value !== null && !Array.isArray(value)) {
      throw storage.error(other, `is configured but storage.type is "${type}"`);
    }
  }
  storage.finish();

  const listener = parseListener(readTable(document, "listener"));
  const sealReader = new ConfigReader(readTable(document, "seal"), "seal");
  sealReader.oneOf("type", ["shamir"], "shamir");
  const keyFile = sealReader.string("unseal_key_file");
  const keyEnv = sealReader.string("unseal_key_env");
  if (keyFile !== undefined && keyEnv !== undefined)
    throw sealReader.error("unseal_key_env", "cannot be set together with seal.unseal_key_file");
  const rotateAfter = sealReader.has("rotate_after_encryptions")
    ? sealReader.integer("rotate_after_encryptions", 0, { min: 1000, max: 2 ** 31 })
    : undefined;
  sealReader.finish();

  const telemetryReader = new ConfigReader(readTable(document, "telemetry"), "telemetry");
  const telemetry = { unauthenticatedMetricsAccess: telemetryReader.boolean("unauthenticated_metrics_access", false) };
  telemetryReader.finish();
  const auditReader = new ConfigReader(readTable(document, "audit"), "audit");
  const audit = { healthChecks: auditReader.boolean("health_checks", true) };
  auditReader.finish();

  const cacheTable = (readTable(document, "cache") ?? {}) as Record<string, unknown>;
  const cacheReader = new ConfigReader(without(cacheTable, ["size"]), "cache");
  const cache = {
    maxBytes: byteSize(cacheTable.size, "cache.size", DEFAULT_CACHE_BYTES, { min: 1024 * 1024, max: 64 * 1024 ** 3 }),
    disabled: cacheReader.boolean("disable", false),
  };
  cacheReader.finish();

  const top = new ConfigReader(without(document, ["storage", "listener", "seal", "telemetry", "audit", "cache"]), "config");
  const defaultTtlMs = top.duration("default_lease_ttl", "768h");
  const maxTtlMs = top.duration("max_lease_ttl", "768h");
  if (defaultTtlMs > maxTtlMs) throw top.error("default_lease_ttl", "must not be longer than max_lease_ttl");
  const logLevel = top.oneOf("log_level", LOG_LEVELS, "info");
  top.finish();

  return {
    storage: { type, ...(packageName !== undefined ? { package: packageName } : {}), options },
    listener,
    seal: {
      ...(keyFile !== undefined ? { autoUnseal: { file: keyFile } } : keyEnv !== undefined ? { autoUnseal: { env: keyEnv } } : {}),
      ...(rotateAfter !== undefined ? { rotateAfterEncryptions: rotateAfter } : {}),
    },
    telemetry,
    audit,
    cache,
    tokens: { defaultTtlMs, maxTtlMs },
    health,
    logLevel,
  };
}

function parseListener(table: unknown): ListenerConfig {
  const reader = new ConfigReader(table, "listener");
  const address = reader.string("address", DEFAULT_ADDRESS);
  const { host, port } = parseAddress(address, reader);
  const tlsDisable = reader.boolean("tls_disable", false);
  const certFile = reader.string("tls_cert_file");
  const keyFile = reader.string("tls_key_file");
  const maxRequestBytes = reader.integer("max_request_size", DEFAULT_MAX_REQUEST_BYTES, { min: 1024, max: 256 * 1024 * 1024 });
  const limits = {
    maxRequestBytes,
    headerTimeoutMs: positiveDuration(reader, "http_read_header_timeout", "10s"),
    requestTimeoutMs: positiveDuration(reader, "max_request_duration", "90s"),
    idleTimeoutMs: positiveDuration(reader, "http_idle_timeout", "30s"),
    maxConnections: reader.integer("max_connections", DEFAULT_MAX_CONNECTIONS, { min: 1, max: 1_000_000 }),
  };
  if (limits.headerTimeoutMs > limits.requestTimeoutMs)
    throw reader.error("http_read_header_timeout", "must not be longer than max_request_duration");
  reader.finish();
  if (tlsDisable) {
    if (certFile !== undefined || keyFile !== undefined)
      throw reader.error("tls_disable", "is true, so tls_cert_file and tls_key_file must not be set");
    return { host, port, ...limits };
  }
  if (certFile === undefined || keyFile === undefined) {
    throw reader.error(
      certFile === undefined ? "tls_cert_file" : "tls_key_file",
      "is required unless tls_disable = true (as in Vault, TLS is on by default)",
    );
  }
  return { host, port, tls: { certFile, keyFile }, ...limits };
}

// A timeout of 0 would mean "never" to Node: refused, so that every limit is a limit.
function positiveDuration(reader: ConfigReader, option: string, fallback: string): number {
  const value = reader.duration(option, fallback);
  if (value <= 0) throw reader.error(option, "must be a positive duration (0 would mean no limit)");
  return value;
}

/** "127.0.0.1:8200", "[::1]:8200", "0.0.0.0:8200". */
export function parseAddress(address: string, reader?: ConfigReader): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    const message = `must be host:port (for example "127.0.0.1:8200" or "[::1]:8200"), got ${JSON.stringify(address)}`;
    throw reader ? reader.error("address", message) : new ConfigError("INVALID_CONFIG", message, { option: "listener.address" });
  }
  return { host: (match[1] ?? match[2]) as string, port };
}

function readTable(document: Record<string, unknown>, name: string): unknown {
  const value = document[name];
  if (value !== undefined && (typeof value !== "object" || value === null || Array.isArray(value))) {
    throw new ConfigError("INVALID_CONFIG", "must be a table", { option: name });
  }
  return value;
}

/** `table` without the named sub-tables (handled by their own readers). */
function without(table: Record<string, unknown>, names: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(table).filter(([name]) => !names.includes(name)));
}
