import { ConfigError } from "@egide/storage-core";
import { TcpProxy } from "@egide/test-postgres";
import { describe, expect, it } from "vitest";
import { backendDefinition, parsePostgresConfig, resolvePostgresOptions } from "../src/index.js";
import { waitLive } from "./support/feed-recorder.js";
import { createTestDatabase, postgresServer } from "./support/postgres-server.js";

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

describe("the change feed's options", () => {
  it("default to a feed that listens where the queries go", () => {
    const parsed = parsePostgresConfig({ host: "db.internal", port: 6432, database: "vault", username: "app", ssl_mode: "require" }, {});
    expect(parsed.changeFeed).toBe(true);
    expect(parsed.listen).toEqual({ host: "db.internal", port: 6432, database: "vault", username: "app", sslMode: "require" });
    expect(parsePostgresConfig({}, {}).listen).toEqual({
      host: "localhost",
      port: 5432,
      database: "egide",
      username: "egide",
      sslMode: "prefer",
    });
    // The main connection given as a url: the listener follows it too.
    expect(parsePostgresConfig({ url: "postgres://u@pgbouncer:6432/d?sslmode=disable" }, {}).listen).toEqual({
      host: "pgbouncer",
      port: 6432,
      database: "d",
      username: "u",
      sslMode: "disable",
    });
  });

  it("read change_feed, listen_host and listen_port", () => {
    const parsed = parsePostgresConfig(
      { host: "pgbouncer", port: 6432, change_feed: false, listen_host: "db-direct", listen_port: 5433 },
      {},
    );
    expect(parsed.changeFeed).toBe(false);
    expect(parsed).toMatchObject({ host: "pgbouncer", port: 6432 });
    expect(parsed.listen).toMatchObject({ host: "db-direct", port: 5433, database: "egide", username: "egide" });
  });

  it("read listen_url like url, with listen_host and listen_port winning over it", () => {
    const table = {
      host: "pgbouncer",
      port: 6432,
      database: "pooled",
      listen_url: "postgresql://listener@db-direct:5433/vault?sslmode=verify-full",
    };
    expect(parsePostgresConfig(table, {}).listen).toEqual({
      host: "db-direct",
      port: 5433,
      database: "vault",
      username: "listener",
      sslMode: "verify-full",
    });
    expect(parsePostgresConfig({ ...table, listen_host: "other", listen_port: 5434 }, {}).listen).toMatchObject({
      host: "other",
      port: 5434,
      database: "vault",
    });
    expect(parsePostgresConfig({ listen_url: "postgres://[::1]" }, {}).listen).toEqual({
      host: "::1",
      port: 5432,
      database: "egide",
      username: "egide",
      sslMode: "prefer",
    });
  });

  it("are taken programmatically as changeFeed, listenUrl, listenHost and listenPort", () => {
    expect(resolvePostgresOptions({ changeFeed: false }).changeFeed).toBe(false);
    expect(resolvePostgresOptions({ host: "pgbouncer", listenHost: "db", listenPort: 5433 }).listen).toMatchObject({
      host: "db",
      port: 5433,
    });
    expect(resolvePostgresOptions({ listenUrl: "postgres://u@db:5433/x" }).listen).toMatchObject({ host: "db", port: 5433, database: "x" });
  });

  it("refuse a password in listen_url without echoing it", () => {
    const failure = configFailure(() => parsePostgresConfig({ listen_url: "postgres://egide:hunter2@db/egide" }, {}));
    expect(failure.option).toBe("storage.postgresql.listen_url");
    expect(failure.message).toMatch(/password/);
    expect(failure.message).not.toContain("hunter2");
    expect(() => resolvePostgresOptions({ listenUrl: "postgres://u:pw@h/d" })).toThrow(/listen_url/);
  });

  it.each([
    [{ change_feed: "yes" }, "storage.postgresql.change_feed"],
    [{ change_feed: 1 }, "storage.postgresql.change_feed"],
    [{ listen_host: 5432 }, "storage.postgresql.listen_host"],
    [{ listen_host: "" }, "storage.postgresql.listen_host"],
    [{ listen_host: "  " }, "storage.postgresql.listen_host"],
    [{ listen_port: 0 }, "storage.postgresql.listen_port"],
    [{ listen_port: 70000 }, "storage.postgresql.listen_port"],
    [{ listen_port: "5432" }, "storage.postgresql.listen_port"],
    [{ listen_port: 5432.5 }, "storage.postgresql.listen_port"],
    [{ listen_url: 7 }, "storage.postgresql.listen_url"],
    [{ listen_url: "not a url" }, "storage.postgresql.listen_url"],
    [{ listen_url: "mysql://u@h/d" }, "storage.postgresql.listen_url"],
    [{ listen_url: "postgres://u@h/d?sslmode=sometimes" }, "storage.postgresql.listen_url"],
    [{ listen_url: "postgres://u@h/d?application_name=x" }, "storage.postgresql.listen_url"],
    [{ listen_database: "d" }, "storage.postgresql.listen_database"],
  ])("reject %j with an error naming %s", (table, option) => {
    const failure = configFailure(() => parsePostgresConfig(table, {}));
    expect(failure.option).toBe(option);
    expect(failure.message.startsWith(`${option}: `)).toBe(true);
  });
});

describe("the backend definition (the configuration file's way)", () => {
  it("opens the LISTEN connection where listen_url and listen_port say", async () => {
    const database = await createTestDatabase("change_feed_definition");
    const proxy = new TcpProxy();
    const { port } = await proxy.start();
    try {
      const config = backendDefinition.parseConfig(
        {
          host: postgresServer.host,
          port: postgresServer.port,
          database: database.name,
          username: postgresServer.username,
          pool_min: 0,
          pool_max: 1,
          listen_url: `postgres://${postgresServer.username}@127.0.0.1/${database.name}?sslmode=disable`,
          listen_port: port,
        },
        {},
      );
      const backend = await backendDefinition.create({ ...config, password: postgresServer.password });
      try {
        expect(backend.options.listen).toEqual({
          host: "127.0.0.1",
          port,
          database: database.name,
          username: postgresServer.username,
          sslMode: "disable",
        });
        const subscription = backend.subscribeChanges!({ change: () => undefined, live: () => undefined });
        await waitLive(subscription);
        expect(proxy.acceptedConnections).toBe(1);
        expect(backend.changeFeedStatus!()).toMatchObject({ live: true, host: "127.0.0.1", port });
        subscription.close();
      } finally {
        await backend.close();
      }
    } finally {
      await proxy.close();
      await database.drop();
    }
  }, 30_000);
});
