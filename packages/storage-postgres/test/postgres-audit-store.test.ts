import { describeAuditStoreConformance } from "@egide/storage-conformance";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PostgresBackend } from "../src/index.js";
import { createTestDatabase, freshSchemaFactory, quoteIdentifier, withAdminClient } from "./support/postgres-server.js";

const database = await createTestDatabase("audit");
const schemas = freshSchemaFactory(database.connection);
afterAll(async () => {
  await schemas.destroyAll();
  await database.drop();
});

const REQUEST = "6f1c1a84-56c5-4b4e-9a65-9d0d8b2a7c11";
const TENANT = "0b8f7a44-1d0e-4a52-8c3e-0e6b1a2f9d10";

describeAuditStoreConformance({
  name: "postgresql",
  create: () => schemas.create(),
  destroy: (backend) => schemas.destroy(backend as PostgresBackend),
});

describe("PostgresAuditStore column types", () => {
  let backend: PostgresBackend;
  beforeEach(async () => {
    backend = await schemas.create();
  });
  afterEach(() => schemas.destroy(backend));

  it("writes to egide_audit_log in the backend's own schema, with the database's column types", async () => {
    await backend.audit.append({
      tenantId: TENANT,
      operation: "login",
      path: "auth/token",
      sourceIp: "10.1.2.3",
      requestId: REQUEST,
      success: true,
      metadata: { a: 1 },
    });
    const schema = schemas.schemaOf(backend)!;
    const rows = await withAdminClient(database.name, (client) =>
      client.query(
        `SELECT tenant_id::text AS tenant, host(source_ip) AS ip, request_id::text AS request, metadata->>'a' AS a
           FROM ${quoteIdentifier(schema)}.egide_audit_log`,
      ),
    );
    expect(rows.rows).toEqual([{ tenant: TENANT, ip: "10.1.2.3", request: REQUEST, a: "1" }]);
  });
});
