import { PostgresBackend } from "@egide/storage-postgres";
import { postgresServer, quoteIdentifier, randomSuffix, withClient } from "@egide/test-postgres";
import { Registry } from "prom-client";
import { afterAll, expect, test } from "vitest";
import { StorageMetricName, withMetrics } from "../src/index.js";

// egide_storage_connections_active follows the PostgreSQL pool at scrape time. The test works
// in a schema of its own in the machine's `postgres` database and drops it afterwards; a
// server that is not running is a loud failure, never a skip.

const schema = `egide_metrics_${randomSuffix()}`;

afterAll(() => withClient("postgres", (client) => client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`)));

async function activeConnections(registry: Registry): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === StorageMetricName.CONNECTIONS);
  return (metric?.values as Array<{ value: number; labels: Record<string, string> }> | undefined)?.find(
    (v) => v.labels.backend === "postgresql",
  )?.value;
}

test("the gauge reports connections checked out of the pool while a transaction holds one", async () => {
  const registry = new Registry();
  const raw = await PostgresBackend.open({ ...postgresServer, database: "postgres", schema, poolMin: 0, poolMax: 4 });
  const storage = withMetrics(raw, { registry });
  try {
    await storage.put("k", Buffer.from("v"));
    expect(await activeConnections(registry)).toBe(0);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const transaction = storage.transaction(async (tx) => {
      await tx.get("k");
      entered();
      await held;
    });
    await inside;
    expect(await activeConnections(registry)).toBe(1);
    release();
    await transaction;
    expect(await activeConnections(registry)).toBe(0);
  } finally {
    await storage.close();
  }
  // A closed backend no longer reports.
  expect(await activeConnections(registry)).toBeUndefined();
});

test("a backend without a pool reports nothing unless told how", async () => {
  const { SqliteBackend } = await import("@egide/storage-sqlite");
  const registry = new Registry();
  const storage = withMetrics(SqliteBackend.open({ path: ":memory:" }), { registry });
  const custom = withMetrics(SqliteBackend.open({ path: ":memory:" }), { registry, backendLabel: "custom", activeConnections: () => 3 });
  try {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === StorageMetricName.CONNECTIONS);
    const values = metric?.values as Array<{ value: number; labels: Record<string, string> }>;
    expect(values.find((v) => v.labels.backend === "sqlite")).toBeUndefined();
    expect(values.find((v) => v.labels.backend === "custom")?.value).toBe(3);
  } finally {
    await storage.close();
    await custom.close();
  }
});
