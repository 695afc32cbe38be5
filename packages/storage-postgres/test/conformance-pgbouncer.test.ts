import { describeStorageConformance } from "@egide/storage-conformance";
import { afterAll, describe, expect, it } from "vitest";
import type { PostgresBackend } from "../src/index.js";
import { startPgBouncer } from "@egide/test-postgres";
import { createTestDatabase, freshSchemaFactory, postgresServer } from "./support/postgres-server.js";

// The whole suite again through PgBouncer in transaction pooling mode: consecutive statements
// of one pg client may land on different server connections, so the backend must keep no
// session state and, with prepareThreshold 0, use no named prepared statements. The change
// feed's LISTEN needs a session of its own, so it goes straight to PostgreSQL, as in production.
const database = await createTestDatabase("conformance_pgbouncer");
const bouncer = await startPgBouncer();
const schemas = freshSchemaFactory(
  { ...database.connection, host: bouncer.host, port: bouncer.port },
  // Dropping schemas is administration, not the backend under test: it goes straight to PostgreSQL.
  {
    admin: database.connection,
    backend: { prepareThreshold: 0, listenHost: postgresServer.host, listenPort: postgresServer.port },
  },
);
afterAll(async () => {
  try {
    await schemas.destroyAll();
  } finally {
    await bouncer.stop();
    await database.drop();
  }
});

describeStorageConformance({
  name: "postgresql (PgBouncer transaction pooling, prepareThreshold 0)",
  create: () => schemas.create(),
  destroy: (backend) => schemas.destroy(backend as PostgresBackend),
  capabilities: { getMany: true, changeFeed: true },
});

// Runs after the suite (vitest keeps file order): proves the suite's traffic really went
// through this PgBouncer, pooled per transaction, rather than straight to PostgreSQL.
describe("the PgBouncer under the suite", () => {
  it("pools in transaction mode and carried the suite's transactions", async () => {
    const pools = await bouncer.show("POOLS");
    const pool = pools.find((row) => row.database === database.name);
    expect(pool?.pool_mode).toBe("transaction");
    const stats = await bouncer.show("STATS");
    const ours = stats.find((row) => row.database === database.name);
    expect(Number(ours?.total_xact_count)).toBeGreaterThan(1000);
  });
});
