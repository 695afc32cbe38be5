import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@egide/storage-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresBackend, backendDefinition, parsePostgresConfig, resolvePostgresOptions } from "../src/index.js";
import { createTestDatabase, postgresServer } from "./support/postgres-server.js";
import type { TestDatabase } from "./support/postgres-server.js";

// A CA file for ssl_root_cert: the parser reads it, so it must exist and hold a PEM block.
const temp = mkdtempSync(join(tmpdir(), "egide-pg-options-"));
const caFile = join(temp, "ca.crt");
writeFileSync(caFile, "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n");
const notPem = join(temp, "not-a-cert.txt");
writeFileSync(notPem, "hello\n");
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** The ConfigError `fn` throws (fails the test if it throws anything else or nothing). */
function configFailure(fn: () => unknown): ConfigError {
  let failure: unknown;
  try {
    fn();
  } catch (error) {
    failure = error;
  }
  expect(ConfigError.isInstance(failure), `expected a ConfigError, got ${String(failure)}`).toBe(true);
  return failure as ConfigError;
}

describe("parsePostgresConfig", () => {
  it("applies the documented defaults (libpq's sslmode default is prefer)", () => {
    expect(parsePostgresConfig({}, {})).toMatchObject({
      host: "localhost",
      port: 5432,
      database: "egide",
      username: "egide",
      password: undefined,
      schema: "public",
      poolMin: 5,
      poolMax: 20,
      connectionTimeoutMs: 10_000,
      idleTimeoutMs: 600_000,
      sslMode: "prefer",
      sslRootCert: undefined,
      statementTimeoutMs: 30_000,
      prepareThreshold: 5,
      maxValueBytes: 1024 * 1024,
    });
  });

  it("reads every option of the specification", () => {
    const parsed = parsePostgresConfig(
      {
        host: "db.internal",
        port: 6543,
        database: "vault",
        username: "egide_app",
        password_env: "EGIDE_DB_PASSWORD",
        pool_min: 2,
        pool_max: 50,
        connection_timeout: "3s",
        idle_timeout: "10m",
        ssl_mode: "verify-full",
        ssl_root_cert: caFile,
        statement_timeout: "1m30s",
        prepare_threshold: 0,
      },
      { EGIDE_DB_PASSWORD: "s3cret" },
    );
    expect(parsed).toMatchObject({
      host: "db.internal",
      port: 6543,
      database: "vault",
      username: "egide_app",
      password: "s3cret",
      poolMin: 2,
      poolMax: 50,
      connectionTimeoutMs: 3000,
      idleTimeoutMs: 600_000,
      sslMode: "verify-full",
      sslRootCert: caFile,
      statementTimeoutMs: 90_000,
      prepareThreshold: 0,
    });
    // The CA is read at parse time, so a missing file is a configuration error, not a TLS one.
    expect(parsed.sslRootCertPem).toContain("BEGIN CERTIFICATE");
  });

  it.each(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const)("accepts ssl_mode %s", (mode) => {
    expect(parsePostgresConfig({ ssl_mode: mode }, {}).sslMode).toBe(mode);
    expect(parsePostgresConfig({ ssl_mode: mode.toUpperCase() }, {}).sslMode).toBe(mode);
  });

  it("takes durations as strings or milliseconds, and 0 disables statement_timeout", () => {
    expect(parsePostgresConfig({ connection_timeout: 1500, idle_timeout: "30s", statement_timeout: 0 }, {})).toMatchObject({
      connectionTimeoutMs: 1500,
      idleTimeoutMs: 30_000,
      statementTimeoutMs: 0,
    });
  });

  it("reads a url, and lets explicit options win over it", () => {
    expect(parsePostgresConfig({ url: "postgres://egide_app@db.internal:6543/vault?sslmode=require" }, {})).toMatchObject({
      host: "db.internal",
      port: 6543,
      database: "vault",
      username: "egide_app",
      password: undefined,
      sslMode: "require",
    });
    expect(parsePostgresConfig({ url: "postgresql://u@[::1]/d" }, {})).toMatchObject({
      host: "::1",
      port: 5432,
      database: "d",
      username: "u",
    });
    expect(parsePostgresConfig({ url: "postgres://u@h:1/d", port: 2, database: "other" }, {})).toMatchObject({
      host: "h",
      port: 2,
      database: "other",
    });
  });

  it("reads the password only from the variable password_env names", () => {
    const failure = configFailure(() => parsePostgresConfig({ password_env: "EGIDE_MISSING_PASSWORD" }, {}));
    expect(failure.option).toBe("storage.postgresql.password_env");
    expect(failure.message).toContain("EGIDE_MISSING_PASSWORD");
  });

  it("refuses a password written in the configuration file", () => {
    const failure = configFailure(() => parsePostgresConfig({ password: "hunter2" }, {}));
    expect(failure.option).toBe("storage.postgresql.password");
    expect(failure.message).toMatch(/password_env/);
    // The secret itself never appears in the error.
    expect(failure.message).not.toContain("hunter2");
  });

  it("refuses a url that carries a password, without echoing it", () => {
    const failure = configFailure(() => parsePostgresConfig({ url: "postgres://egide:hunter2@db/egide" }, {}));
    expect(failure.option).toBe("storage.postgresql.url");
    expect(failure.message).toMatch(/password/);
    expect(failure.message).not.toContain("hunter2");
  });

  it.each([
    [{ host: 5432 }, "storage.postgresql.host"],
    [{ host: "" }, "storage.postgresql.host"],
    [{ port: 0 }, "storage.postgresql.port"],
    [{ port: 70000 }, "storage.postgresql.port"],
    [{ port: "5432" }, "storage.postgresql.port"],
    [{ database: "" }, "storage.postgresql.database"],
    [{ username: 7 }, "storage.postgresql.username"],
    [{ password_env: 1 }, "storage.postgresql.password_env"],
    [{ pool_min: -1 }, "storage.postgresql.pool_min"],
    [{ pool_min: 1.5 }, "storage.postgresql.pool_min"],
    [{ pool_max: 0 }, "storage.postgresql.pool_max"],
    [{ pool_max: "20" }, "storage.postgresql.pool_max"],
    [{ connection_timeout: "10 seconds" }, "storage.postgresql.connection_timeout"],
    [{ connection_timeout: 0 }, "storage.postgresql.connection_timeout"],
    [{ idle_timeout: "soon" }, "storage.postgresql.idle_timeout"],
    [{ idle_timeout: -1 }, "storage.postgresql.idle_timeout"],
    [{ ssl_mode: "on" }, "storage.postgresql.ssl_mode"],
    [{ ssl_mode: true }, "storage.postgresql.ssl_mode"],
    [{ ssl_root_cert: join(temp, "missing.crt") }, "storage.postgresql.ssl_root_cert"],
    [{ ssl_root_cert: notPem }, "storage.postgresql.ssl_root_cert"],
    [{ statement_timeout: "forever" }, "storage.postgresql.statement_timeout"],
    [{ prepare_threshold: -1 }, "storage.postgresql.prepare_threshold"],
    [{ prepare_threshold: "5" }, "storage.postgresql.prepare_threshold"],
    [{ url: "not a url" }, "storage.postgresql.url"],
    [{ url: "mysql://u@h/d" }, "storage.postgresql.url"],
    [{ url: "postgres://u@h/d?sslmode=sometimes" }, "storage.postgresql.url"],
    [{ hostname: "db" }, "storage.postgresql.hostname"],
  ])("rejects %j with an error naming %s", (table, option) => {
    const failure = configFailure(() => parsePostgresConfig(table, {}));
    expect(failure.option).toBe(option);
    expect(failure.message.startsWith(`${option}: `)).toBe(true);
  });

  it("rejects pool_min above pool_max", () => {
    const failure = configFailure(() => parsePostgresConfig({ pool_min: 10, pool_max: 5 }, {}));
    expect(failure.option).toMatch(/^storage\.postgresql\.pool_(min|max)$/);
    expect(failure.message).toMatch(/pool_max/);
    expect(parsePostgresConfig({ pool_min: 5, pool_max: 5 }, {})).toMatchObject({ poolMin: 5, poolMax: 5 });
  });

  it("rejects a table that is not a table", () => {
    expect(configFailure(() => parsePostgresConfig("postgres://u@h/d", {})).option).toBe("storage.postgresql");
  });
});

describe("programmatic options", () => {
  it("are checked like the file's, naming the option", async () => {
    await expect(PostgresBackend.open({ host: "127.0.0.1", poolMin: 3, poolMax: 2 })).rejects.toSatisfy((error) =>
      ConfigError.isInstance(error),
    );
    await expect(PostgresBackend.open({ host: "127.0.0.1", url: "postgres://u:pw@h/d" })).rejects.toThrow(/url/);
  });
});

describe("backendDefinition", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase("options");
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("is registered as postgresql by this package", () => {
    expect(backendDefinition.type).toBe("postgresql");
    expect(backendDefinition.packageName).toBe("@egide/storage-postgres");
  });

  it("parses the same way as parsePostgresConfig and opens a working backend", async () => {
    const table = {
      host: postgresServer.host,
      port: postgresServer.port,
      database: database.name,
      username: postgresServer.username,
      pool_min: 0,
      pool_max: 2,
      ssl_mode: "disable",
      statement_timeout: "5s",
      prepare_threshold: 1,
    };
    const config = backendDefinition.parseConfig(table, {});
    expect(config).toEqual(parsePostgresConfig(table, {}));
    const backend = await backendDefinition.create(config);
    try {
      expect(backend.type).toBe("postgresql");
      await backend.put("options/check", Buffer.from("ok"));
      expect(await backend.get("options/check")).toEqual(Buffer.from("ok"));
      expect(await backend.list("options/")).toEqual(["check"]);
    } finally {
      await backend.close();
    }
  });
});

describe("the password in resolved options", () => {
  it("is readable but never shown by inspect or JSON", async () => {
    const { inspect } = await import("node:util");
    const parsed = parsePostgresConfig({ password_env: "EGIDE_TEST_PW" }, { EGIDE_TEST_PW: "hunter2-secret" });
    expect(parsed.password).toBe("hunter2-secret");
    expect(inspect(parsed)).not.toContain("hunter2-secret");
    expect(JSON.stringify(parsed)).not.toContain("hunter2-secret");
    const resolved = resolvePostgresOptions({ password: "another-secret" });
    expect(resolved.password).toBe("another-secret");
    expect(inspect(resolved)).not.toContain("another-secret");
  });
});

describe("several hosts", () => {
  it("are read from hosts, entries without a port taking port, with read-write as the default", () => {
    const parsed = parsePostgresConfig({ hosts: ["db1:5432", "db2", "[::1]:5433"], port: 6000 }, {});
    expect(parsed.hosts).toEqual([
      { host: "db1", port: 5432 },
      { host: "db2", port: 6000 },
      { host: "::1", port: 5433 },
    ]);
    expect(parsed).toMatchObject({ host: "db1", port: 5432, targetSessionAttrs: "read-write", listenFollowsWritable: true });
    expect(parsePostgresConfig({ hosts: ["a", "b"], target_session_attrs: "any" }, {}).targetSessionAttrs).toBe("any");
  });

  it("keep one host and target_session_attrs = any by default", () => {
    expect(parsePostgresConfig({ host: "db", port: 7 }, {})).toMatchObject({ hosts: [{ host: "db", port: 7 }], targetSessionAttrs: "any" });
    expect(parsePostgresConfig({}, {}).hosts).toEqual([{ host: "localhost", port: 5432 }]);
  });

  it("are read from a libpq multi-host url, with target_session_attrs", () => {
    const parsed = parsePostgresConfig({ url: "postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write&sslmode=require" }, {});
    expect(parsed).toMatchObject({
      hosts: [
        { host: "h1", port: 5432 },
        { host: "h2", port: 5433 },
      ],
      database: "db",
      username: "u",
      sslMode: "require",
      targetSessionAttrs: "read-write",
    });
    expect(parsePostgresConfig({ url: "postgresql://u@h1,h2/db" }, {}).hosts).toEqual([
      { host: "h1", port: 5432 },
      { host: "h2", port: 5432 },
    ]);
    expect(parsePostgresConfig({ url: "postgres://u@h1,h2/db?target_session_attrs=any" }, {}).targetSessionAttrs).toBe("any");
  });

  it("are taken programmatically as hosts and targetSessionAttrs", () => {
    expect(resolvePostgresOptions({ hosts: ["a:1", "b:2"], targetSessionAttrs: "any" })).toMatchObject({
      hosts: [
        { host: "a", port: 1 },
        { host: "b", port: 2 },
      ],
      targetSessionAttrs: "any",
    });
  });

  it("let listen_host, listen_port or listen_url pin the LISTEN connection", () => {
    expect(parsePostgresConfig({ hosts: ["a", "b"], listen_host: "direct" }, {}).listenFollowsWritable).toBe(false);
    expect(parsePostgresConfig({ hosts: ["a", "b"], listen_url: "postgres://u@direct/d" }, {}).listenFollowsWritable).toBe(false);
    expect(parsePostgresConfig({ hosts: ["a", "b"], listen_port: 5433 }, {}).listenFollowsWritable).toBe(false);
  });

  it.each([
    [{ hosts: [] }, "storage.postgresql.hosts"],
    [{ hosts: "a,b" }, "storage.postgresql.hosts"],
    [{ hosts: ["a", 5] }, "storage.postgresql.hosts"],
    [{ hosts: ["a:0"] }, "storage.postgresql.hosts"],
    [{ hosts: ["a:x"] }, "storage.postgresql.hosts"],
    [{ hosts: [""] }, "storage.postgresql.hosts"],
    [{ hosts: ["a", "a:5432"] }, "storage.postgresql.hosts"],
    [{ hosts: ["a"], host: "b" }, "storage.postgresql.hosts"],
    [{ hosts: ["a", "b"], target_session_attrs: "primary" }, "storage.postgresql.target_session_attrs"],
    [{ url: "postgres://u@h1,h2/d?target_session_attrs=standby" }, "storage.postgresql.url"],
    [{ url: "postgres://u@h1,:99999/d" }, "storage.postgresql.url"],
    [{ url: "postgres://u:pw@h1,h2/d" }, "storage.postgresql.url"],
    [{ listen_url: "postgres://u@h1,h2/d" }, "storage.postgresql.listen_url"],
  ])("reject %j naming %s", (table, option) => {
    expect(configFailure(() => parsePostgresConfig(table, {})).option).toBe(option);
  });
});
