import { ReferenceModel, describeDecoratorCapabilities } from "@egide/storage-conformance";
import { PostgresBackend } from "@egide/storage-postgres";
import { SqliteBackend } from "@egide/storage-sqlite";
import { postgresServer, quoteIdentifier, randomSuffix, withClient } from "@egide/test-postgres";
import { Registry } from "prom-client";
import { afterAll } from "vitest";
import { withMetrics } from "../src/index.js";

// The decorator keeps exactly the optional capabilities of the backend it wraps: bulk puts,
// getMany and audit rows in transactions, the audit store and its appendMany, PostgreSQL's
// poolStats, getMany and the change feed (each also checked over fixture backends with and
// without it).
const registry = new Registry();
const schema = `egide_metrics_caps_${randomSuffix()}`;

afterAll(() => withClient("postgres", (client) => client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`)));

describeDecoratorCapabilities({
  name: "withMetrics over sqlite (memory)",
  wrap: (inner) => withMetrics(inner, { registry }),
  create: async () => SqliteBackend.open({ path: ":memory:" }),
});

describeDecoratorCapabilities({
  name: "withMetrics over the reference model with getMany and a change feed",
  wrap: (inner) => withMetrics(inner, { registry, backendLabel: "reference-caps" }),
  create: async () => new ReferenceModel({ getMany: true, changeFeed: true }),
});

describeDecoratorCapabilities({
  name: "withMetrics over postgresql",
  wrap: (inner) => withMetrics(inner, { registry, backendLabel: "postgresql-caps" }),
  create: async () => PostgresBackend.open({ ...postgresServer, database: "postgres", schema, poolMin: 0, poolMax: 2 }),
});
