import { describeDecoratorCapabilities } from "@egide/storage-conformance";
import { PostgresBackend } from "@egide/storage-postgres";
import { SqliteBackend } from "@egide/storage-sqlite";
import { postgresServer, quoteIdentifier, randomSuffix, withClient } from "@egide/test-postgres";
import { Registry } from "prom-client";
import { afterAll } from "vitest";
import { withMetrics } from "../src/index.js";

// The decorator keeps exactly the optional capabilities of the backend it wraps: bulk puts and
// audit rows in transactions, the audit store and its appendMany, and PostgreSQL's poolStats.
const registry = new Registry();
const schema = `egide_metrics_caps_${randomSuffix()}`;

afterAll(() => withClient("postgres", (client) => client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`)));

describeDecoratorCapabilities({
  name: "withMetrics over sqlite (memory)",
  wrap: (inner) => withMetrics(inner, { registry }),
  create: async () => SqliteBackend.open({ path: ":memory:" }),
});

describeDecoratorCapabilities({
  name: "withMetrics over postgresql",
  wrap: (inner) => withMetrics(inner, { registry, backendLabel: "postgresql-caps" }),
  create: async () => PostgresBackend.open({ ...postgresServer, database: "postgres", schema, poolMin: 0, poolMax: 2 }),
});
