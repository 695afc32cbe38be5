import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { SqliteBackend } from "../src/index.js";
import { tempDirectory } from "./temp-database.js";

const temp = tempDirectory("sqlite-audit");
afterAll(() => temp.remove());

const REQUEST = "6f1c1a84-56c5-4b4e-9a65-9d0d8b2a7c11";
const TENANT = "0b8f7a44-1d0e-4a52-8c3e-0e6b1a2f9d10";

describe.each([
  ["file", () => temp.file()],
  ["memory", () => ":memory:"],
])("SqliteAuditStore (%s)", (_, path) => {
  let backend: SqliteBackend;
  beforeEach(() => {
    backend = SqliteBackend.open({ path: path() });
  });
  afterEach(() => backend.close());

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
      metadata: { status: 403, policies: ["default"] },
    });
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
      metadata: { status: 403, policies: ["default"] },
    });
  });

  it("filters by time range, tenant, path prefix, operation, success and id, oldest first", async () => {
    const base = Date.parse("2026-03-01T00:00:00Z");
    for (let i = 0; i < 10; i++) {
      await backend.audit.append({
        timestamp: new Date(base + i * 1000),
        tenantId: i % 2 === 0 ? TENANT : null,
        operation: i % 3 === 0 ? "read" : "update",
        path: i < 5 ? `secret/a_${i}` : `sys/x%${i}`,
        success: i !== 7,
      });
    }
    const paths = async (filter: Parameters<typeof backend.audit.query>[0]) => (await backend.audit.query(filter)).map((r) => r.path);
    expect(await paths({ since: new Date(base + 3000), until: new Date(base + 6000) })).toEqual(["secret/a_3", "secret/a_4", "sys/x%5"]);
    expect(await paths({ tenantId: TENANT })).toEqual(["secret/a_0", "secret/a_2", "secret/a_4", "sys/x%6", "sys/x%8"]);
    expect(await paths({ pathPrefix: "secret/a_" })).toHaveLength(5);
    // '%' and '_' are literal: "secret/a%" matches nothing, "sys/x%" matches the five sys rows.
    expect(await paths({ pathPrefix: "secret/a%" })).toEqual([]);
    expect(await paths({ pathPrefix: "sys/x%" })).toHaveLength(5);
    expect(await paths({ operation: "read" })).toEqual(["secret/a_0", "secret/a_3", "sys/x%6", "sys/x%9"]);
    expect(await paths({ success: false })).toEqual(["sys/x%7"]);
    const all = await backend.audit.query();
    expect(all.map((r) => r.id)).toEqual([...all.map((r) => r.id)].sort((a, b) => a - b));
    expect(await paths({ afterId: all[7]?.id, limit: 1 })).toEqual(["sys/x%8"]);
  });

  it("rejects a malformed entry and stores nothing", async () => {
    await expect(backend.audit.append({ operation: "read", path: "p", success: true, requestId: "nope" })).rejects.toThrow(/requestId must be a UUID/);
    expect(await backend.audit.query()).toEqual([]);
  });

  it("fails the append once the backend is closed, so a caller can fail closed", async () => {
    await backend.close();
    await expect(backend.audit.append({ operation: "read", path: "p", success: true })).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("waits for an open transaction instead of writing into it", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tx = backend
      .transaction(async (t) => {
        await t.put("k", Buffer.from("v"));
        await gate;
        throw new Error("roll back");
      })
      .catch(() => undefined);
    const append = backend.audit.append({ operation: "update", path: "k", success: false });
    release();
    await tx;
    await append;
    // The rollback undid the transaction's put but not the audit row appended after it.
    expect(await backend.get("k")).toBeNull();
    expect(await backend.audit.query({ path: undefined })).toHaveLength(1);
  });
});
