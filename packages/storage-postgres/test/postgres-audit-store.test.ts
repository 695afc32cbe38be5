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

describe("PostgresAuditStore", () => {
  let backend: PostgresBackend;
  beforeEach(async () => {
    backend = await schemas.create();
  });
  afterEach(() => schemas.destroy(backend));

  it("appends every column of the specification and reads it back", async () => {
    const timestamp = new Date("2026-01-02T03:04:05.678Z");
    const stored = await backend.audit.append({
      timestamp,
      tenantId: TENANT,
      operation: "update",
      path: "secret/data/app",
      sourceIp: "2001:db8::1",
      userId: "accessor-1",
      requestId: REQUEST,
      success: false,
      errorMessage: "permission denied",
      metadata: { status: 403, policies: ["default"], nested: { ok: false } },
    });
    expect(typeof stored.id).toBe("number");
    expect(stored.id).toBeGreaterThan(0);
    const [row] = await backend.audit.query({ requestId: REQUEST });
    expect(row).toEqual({
      id: stored.id,
      timestamp,
      tenantId: TENANT,
      operation: "update",
      path: "secret/data/app",
      sourceIp: "2001:db8::1",
      userId: "accessor-1",
      requestId: REQUEST,
      success: false,
      errorMessage: "permission denied",
      metadata: { status: 403, policies: ["default"], nested: { ok: false } },
    });
    expect(stored).toEqual(row);
  });

  it("fills in the defaults of a minimal entry", async () => {
    const before = Date.now();
    const stored = await backend.audit.append({ operation: "read", path: "sys/health", success: true, sourceIp: "192.0.2.7" });
    const [row] = await backend.audit.query();
    expect(row).toEqual({
      id: stored.id,
      timestamp: expect.any(Date),
      tenantId: null,
      operation: "read",
      path: "sys/health",
      sourceIp: "192.0.2.7",
      userId: null,
      requestId: null,
      success: true,
      errorMessage: null,
      metadata: null,
    });
    // Allow for clock skew between this process and the server, should the default be NOW().
    expect(Math.abs(row!.timestamp.getTime() - before)).toBeLessThan(60_000);
  });

  it("writes to egide_audit_log in the backend's own schema, with the database's column types", async () => {
    await backend.audit.append({ tenantId: TENANT, operation: "login", path: "auth/token", sourceIp: "10.1.2.3", requestId: REQUEST, success: true, metadata: { a: 1 } });
    const schema = schemas.schemaOf(backend)!;
    const rows = await withAdminClient(database.name, (client) =>
      client.query(
        `SELECT tenant_id::text AS tenant, host(source_ip) AS ip, request_id::text AS request, metadata->>'a' AS a
           FROM ${quoteIdentifier(schema)}.egide_audit_log`,
      ),
    );
    expect(rows.rows).toEqual([{ tenant: TENANT, ip: "10.1.2.3", request: REQUEST, a: "1" }]);
  });

  it("filters by time range, tenant, request, path prefix, operation, success and id, oldest first", async () => {
    const base = Date.parse("2026-03-01T00:00:00Z");
    const OTHER_REQUEST = "11111111-2222-4333-8444-555555555555";
    for (let i = 0; i < 10; i++) {
      await backend.audit.append({
        timestamp: new Date(base + i * 1000),
        tenantId: i % 2 === 0 ? TENANT : null,
        operation: i % 3 === 0 ? "read" : "update",
        path: i < 5 ? `secret/a_${i}` : `sys/x%${i}`,
        requestId: i === 4 ? OTHER_REQUEST : REQUEST,
        success: i !== 7,
      });
    }
    const paths = async (filter: Parameters<typeof backend.audit.query>[0]) => (await backend.audit.query(filter)).map((r) => r.path);
    // since is inclusive, until exclusive.
    expect(await paths({ since: new Date(base + 3000), until: new Date(base + 6000) })).toEqual(["secret/a_3", "secret/a_4", "sys/x%5"]);
    expect(await paths({ since: new Date(base + 8000) })).toEqual(["sys/x%8", "sys/x%9"]);
    expect(await paths({ until: new Date(base + 1000) })).toEqual(["secret/a_0"]);
    expect(await paths({ tenantId: TENANT })).toEqual(["secret/a_0", "secret/a_2", "secret/a_4", "sys/x%6", "sys/x%8"]);
    expect(await paths({ requestId: OTHER_REQUEST })).toEqual(["secret/a_4"]);
    expect(await paths({ tenantId: TENANT, requestId: REQUEST, since: new Date(base + 2000) })).toEqual(["secret/a_2", "sys/x%6", "sys/x%8"]);
    expect(await paths({ pathPrefix: "secret/a_" })).toHaveLength(5);
    // '%' and '_' are literal: "secret/a%" and "secret/_" match nothing, "sys/x%" matches the
    // five sys rows.
    expect(await paths({ pathPrefix: "secret/a%" })).toEqual([]);
    expect(await paths({ pathPrefix: "secret/_" })).toEqual([]);
    expect(await paths({ pathPrefix: "sys/x%" })).toHaveLength(5);
    expect(await paths({ pathPrefix: "sys/x%7" })).toEqual(["sys/x%7"]);
    expect(await paths({ operation: "read" })).toEqual(["secret/a_0", "secret/a_3", "sys/x%6", "sys/x%9"]);
    expect(await paths({ success: false })).toEqual(["sys/x%7"]);
    expect(await paths({ success: true })).toHaveLength(9);
    const all = await backend.audit.query();
    expect(all).toHaveLength(10);
    expect(all.map((r) => r.id)).toEqual([...all.map((r) => r.id)].sort((a, b) => a - b));
    expect(await paths({ afterId: all[7]?.id, limit: 1 })).toEqual(["sys/x%8"]);
    expect(await paths({ afterId: all[7]?.id })).toEqual(["sys/x%8", "sys/x%9"]);
    expect(await paths({ limit: 3 })).toEqual(["secret/a_0", "secret/a_1", "secret/a_2"]);
  });

  it("treats a backslash in a path prefix literally, not as a LIKE escape", async () => {
    for (const path of ["dir\\_x", "dir\\ax", "dir_x", "dir\\\\y"]) await backend.audit.append({ operation: "read", path, success: true });
    const paths = async (pathPrefix: string) => (await backend.audit.query({ pathPrefix })).map((r) => r.path);
    expect(await paths("dir\\_")).toEqual(["dir\\_x"]);
    expect(await paths("dir\\")).toEqual(["dir\\_x", "dir\\ax", "dir\\\\y"]);
    expect(await paths("dir\\\\")).toEqual(["dir\\\\y"]);
    expect(await paths("dir_")).toEqual(["dir_x"]);
  });

  it("rejects a malformed entry and stores nothing", async () => {
    await expect(backend.audit.append({ operation: "read", path: "p", success: true, requestId: "nope" })).rejects.toThrow(/requestId must be a UUID/);
    await expect(backend.audit.append({ operation: "read", path: "p", success: true, tenantId: "x" })).rejects.toThrow(/tenantId must be a UUID/);
    await expect(backend.audit.append({ operation: "read", path: "p", success: true, sourceIp: "300.1.1.1" })).rejects.toThrow(/sourceIp/);
    await expect(backend.audit.append({ operation: "", path: "p", success: true })).rejects.toThrow(/operation/);
    await expect(backend.audit.append({ operation: "read", path: "p", success: "yes" as unknown as boolean })).rejects.toThrow(/success/);
    expect(await backend.audit.query()).toEqual([]);
  });

  it("fails the append once the backend is closed, so a caller can fail closed", async () => {
    await backend.close();
    await expect(backend.audit.append({ operation: "read", path: "p", success: true })).rejects.toMatchObject({ code: "CLOSED" });
    await expect(backend.audit.query()).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("writes outside any open transaction, so a rollback does not undo an audit row", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const tx = backend
      .transaction(async (t) => {
        await t.put("k", Buffer.from("v"));
        entered();
        await gate;
        throw new Error("roll back");
      })
      .catch(() => undefined);
    await inside;
    // The append completes while the transaction is still open: it is not queued behind it.
    await backend.audit.append({ operation: "update", path: "k", success: false });
    release();
    await tx;
    expect(await backend.get("k")).toBeNull();
    expect(await backend.audit.query()).toHaveLength(1);
  });
});
