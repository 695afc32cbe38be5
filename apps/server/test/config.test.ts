import { ConfigError } from "@egide/storage-core";
import { describe, expect, test } from "vitest";
import { parseServerConfig } from "../src/index.js";

// The server's TOML: every section, defaults, and errors that name the option at fault.

const MINIMAL = `[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = "/tmp/x.db"\n[listener]\ntls_disable = true\n`;

function configError(text: string): ConfigError {
  try {
    parseServerConfig(text);
  } catch (error) {
    if (ConfigError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("parseServerConfig", () => {
  test("defaults: 127.0.0.1:8200, 2 MiB requests, Vault-like timeouts, a connection cap, shamir without auto-unseal, 768h tokens", () => {
    const config = parseServerConfig(MINIMAL);
    expect(config.storage).toEqual({ type: "sqlite", options: { path: "/tmp/x.db" } });
  });

  test("takes any adapter's type and table, and [storage] package naming its npm package", () => {
    const config = parseServerConfig(
      `[storage]\ntype = "memkv"\npackage = "@acme/egide-memkv"\n[storage.memkv]\nshards = 4\nname = "a"\n[listener]\ntls_disable = true\n`,
    );
    expect(config.storage).toEqual({ type: "memkv", package: "@acme/egide-memkv", options: { shards: 4, name: "a" } });
    expect(parseServerConfig(`[storage]\ntype = "etcd"\n[listener]\ntls_disable = true\n`).storage).toEqual({
      type: "etcd",
      options: undefined,
    });
    expect(config.listener).toEqual({
      host: "127.0.0.1",
      port: 8200,
      maxRequestBytes: 2 * 1024 * 1024,
      headerTimeoutMs: 10_000,
      requestTimeoutMs: 90_000,
      idleTimeoutMs: 30_000,
      maxConnections: 2048,
    });
    expect(config.seal).toEqual({});
    expect(config.telemetry.unauthenticatedMetricsAccess).toBe(false);
    expect(config.audit.healthChecks).toBe(true);
    expect(config.tokens).toEqual({ defaultTtlMs: 768 * 3600_000, maxTtlMs: 768 * 3600_000 });
    expect(config.health).toEqual({ intervalMs: 5000, timeoutMs: 2000 });
  });

  test("every section is read", () => {
    const config = parseServerConfig(`
log_level = "warn"
default_lease_ttl = "1h"
max_lease_ttl = "24h"
[storage]
type = "postgresql"
health_interval = "1s"
health_timeout = "500ms"
[storage.postgresql]
host = "db"
[listener]
address = "[::1]:8300"
tls_cert_file = "/c.pem"
tls_key_file = "/k.pem"
max_request_size = 4096
http_read_header_timeout = "2s"
max_request_duration = "30s"
http_idle_timeout = "1s"
max_connections = 10
[seal]
type = "shamir"
unseal_key_env = "EGIDE_UNSEAL_KEY"
rotate_after_encryptions = 100000
[telemetry]
unauthenticated_metrics_access = true
[audit]
health_checks = false
`);
    expect(config.storage).toEqual({ type: "postgresql", options: { host: "db" } });
    expect(config.listener).toEqual({
      host: "::1",
      port: 8300,
      tls: { certFile: "/c.pem", keyFile: "/k.pem" },
      maxRequestBytes: 4096,
      headerTimeoutMs: 2000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 1000,
      maxConnections: 10,
    });
    expect(config.seal).toEqual({ autoUnseal: { env: "EGIDE_UNSEAL_KEY" }, rotateAfterEncryptions: 100000 });
    expect(config.telemetry.unauthenticatedMetricsAccess).toBe(true);
    expect(config.audit.healthChecks).toBe(false);
    expect(config.tokens).toEqual({ defaultTtlMs: 3600_000, maxTtlMs: 24 * 3600_000 });
    expect(config.health).toEqual({ intervalMs: 1000, timeoutMs: 500 });
    expect(config.logLevel).toBe("warn");
  });

  test.each([
    ["not TOML at all = = =", "config", /not valid TOML at line 1/],
    [`[listener]\ntls_disable = true\n`, "storage.type", /required/],
    [MINIMAL.replace("[listener]\ntls_disable = true\n", "[listener]\n"), "listener.tls_cert_file", /unless tls_disable = true/],
    [`${MINIMAL}[seal]\nunseal_key_file = "/k"\nunseal_key_env = "K"\n`, "seal.unseal_key_env", /cannot be set together/],
    [MINIMAL.replace("tls_disable = true", 'tls_disable = true\naddress = "localhost"'), "listener.address", /host:port/],
    [MINIMAL.replace("tls_disable = true", 'tls_disable = true\naddress = "1.2.3.4:99999"'), "listener.address", /host:port/],
    [MINIMAL.replace("tls_disable = true", "tls_disable = true\nbind = 1"), "listener.bind", /unknown option/],
    [`surprise = 1\n${MINIMAL}`, "config.surprise", /unknown option/],
    [`${MINIMAL}[storage.postgresql]\nhost = "x"\n`, "storage.postgresql", /storage.type is "sqlite"/],
    // Any adapter's table, not only the shipped ones: a switched type's old table is named.
    [`${MINIMAL}[storage.etcd]\nendpoints = ["http://127.0.0.1:2379"]\n`, "storage.etcd", /storage.type is "sqlite"/],
    // The type and package name packages: checked before anything could be imported.
    ['[storage]\ntype = "../evil"\n[listener]\ntls_disable = true\n', "storage.type", /not a storage type name/],
    ['[storage]\ntype = "Etcd"\n[listener]\ntls_disable = true\n', "storage.type", /not a storage type name/],
    [MINIMAL.replace('type = "sqlite"', 'type = "sqlite"\npackage = "./adapter.js"'), "storage.package", /not an npm package name/],
    [MINIMAL.replace('type = "sqlite"', 'type = "sqlite"\npackage = "/abs/x"'), "storage.package", /not an npm package name/],
    // A builtin's name would load the builtin (or a file of the working directory), never a package.
    [MINIMAL.replace('type = "sqlite"', 'type = "sqlite"\npackage = "events"'), "storage.package", /not an npm package name/],
    [MINIMAL.replace('type = "sqlite"', 'type = "sqlite"\npackage = 1'), "storage.package", /string/],
    [MINIMAL.replace('type = "sqlite"', 'type = "sqlite"\nmodule = "x"'), "storage.module", /unknown option/],
    [`${MINIMAL}[seal]\ntype = "awskms"\n`, "seal.type", /one of "shamir"/],
    [`default_lease_ttl = "48h"\nmax_lease_ttl = "1h"\n${MINIMAL}`, "config.default_lease_ttl", /max_lease_ttl/],
    [`${MINIMAL}[telemetry]\nunauthenticated_metrics_access = "yes"\n`, "telemetry.unauthenticated_metrics_access", /true or false/],
    // A limit of 0 would be "no limit" to Node: refused, never taken as forever.
    [MINIMAL.replace("tls_disable = true", 'tls_disable = true\nmax_request_duration = "0s"'), "listener.max_request_duration", /positive/],
    [
      MINIMAL.replace("tls_disable = true", "tls_disable = true\nhttp_read_header_timeout = 0"),
      "listener.http_read_header_timeout",
      /positive/,
    ],
    [MINIMAL.replace("tls_disable = true", 'tls_disable = true\nhttp_idle_timeout = "0s"'), "listener.http_idle_timeout", /positive/],
    [MINIMAL.replace("tls_disable = true", "tls_disable = true\nmax_connections = 0"), "listener.max_connections", /./],
    [
      MINIMAL.replace("tls_disable = true", 'tls_disable = true\nhttp_read_header_timeout = "2m"'),
      "listener.http_read_header_timeout",
      /max_request_duration/,
    ],
  ])("refuses %j naming %s", (text, option, message) => {
    const error = configError(text);
    if (option !== "config") expect(error.message).toContain(option);
    expect(error.message).toMatch(message);
  });
});
