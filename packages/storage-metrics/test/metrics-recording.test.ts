import { StorageError } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { StorageMetricName, withMetrics } from "../src/index.js";
import { sampleMetric } from "./sample-metric.js";

// What the decorator records, read back through the registry's own exposition, the way
// Prometheus scrapes it.

let registry: Registry;
let raw: SqliteBackend;
let storage: StorageBackend;

beforeEach(() => {
  registry = new Registry();
  raw = SqliteBackend.open({ path: ":memory:" });
  storage = withMetrics(raw, { registry });
});

afterEach(async () => {
  await storage.close();
});

function sample(name: string, labels: Record<string, string>, suffix = ""): Promise<number> {
  return sampleMetric(registry, name, labels, suffix);
}

const ops = (operation: string) => sample(StorageMetricName.OPERATIONS, { backend: "sqlite", operation });
const errors = (operation: string, code: string) => sample(StorageMetricName.ERRORS, { backend: "sqlite", operation, code });
const durationCount = (operation: string) => sample(StorageMetricName.DURATION, { backend: "sqlite", operation }, "_count");

describe("operations, latency and errors", () => {
  test("every point operation is counted and timed under its own label, results untouched", async () => {
    await storage.put("a/b", Buffer.from("v"));
    expect((await storage.get("a/b"))?.toString()).toBe("v");
    expect(await storage.get("missing")).toBeNull();
    expect(await storage.exists("a/b")).toBe(true);
    expect(await storage.list("a/")).toEqual(["b"]);
    expect(await storage.listPage("a/", "", 1)).toEqual(["b"]);
    await storage.delete("a/b");
    expect((await storage.health()).status).toBe("healthy");
    for (const [operation, count] of [
      ["put", 1],
      ["get", 2],
      ["exists", 1],
      ["list", 1],
      ["list_page", 1],
      ["delete", 1],
      ["health", 1],
    ] as const) {
      expect(await ops(operation), operation).toBe(count);
      expect(await durationCount(operation), operation).toBe(count);
    }
    const sum = await sample(StorageMetricName.DURATION, { backend: "sqlite", operation: "get" }, "_sum");
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(5);
  });

  test("failures are counted by StorageError code and still count as operations", async () => {
    const bad = await storage.get("/leading-slash").catch((e: unknown) => e);
    expect(StorageError.isInstance(bad, "INVALID_KEY")).toBe(true);
    await expect(storage.put("k", Buffer.alloc(2 * 1024 * 1024))).rejects.toMatchObject({ code: "VALUE_TOO_LARGE" });
    expect(await errors("get", "INVALID_KEY")).toBe(1);
    expect(await errors("put", "VALUE_TOO_LARGE")).toBe(1);
    expect(await ops("get")).toBe(1);
    expect(await ops("put")).toBe(1);
    // A value that is not bytes: whatever the backend reports, its code is the label.
    const wrongType = await storage.put("k", "text" as unknown as Uint8Array).catch((e: unknown) => e);
    const label = StorageError.isInstance(wrongType) ? wrongType.code : (wrongType as Error).name;
    expect(await errors("put", label)).toBe(1);
  });

  test("a transaction is one operation, and the operations inside it are recorded too", async () => {
    await storage.transaction(async (tx) => {
      await tx.put("t/1", Buffer.from("1"));
      await tx.get("t/1");
      await tx.exists("t/1");
      await tx.list("t/");
    });
    await expect(
      storage.transaction(async (tx) => {
        await tx.put("t/2", Buffer.from("2"));
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    await expect(storage.transaction((tx) => tx.put("t/3", Buffer.from("3")), { readOnly: true })).rejects.toMatchObject({
      code: "READ_ONLY",
    });
    expect(await ops("transaction")).toBe(3);
    expect(await errors("transaction", "Error")).toBe(1);
    expect(await errors("transaction", "READ_ONLY")).toBe(1);
    expect(await errors("put", "READ_ONLY")).toBe(1);
    expect(await ops("put")).toBe(3);
    expect(await storage.exists("t/2")).toBe(false);
  });

  test("an audit row written inside a transaction is recorded as audit_append and commits with it", async () => {
    const { isAuditingTransaction } = await import("@egide/storage-core");
    await storage.transaction(async (tx) => {
      if (!isAuditingTransaction(tx)) throw new Error("metered transactions must offer appendAudit");
      await tx.put("a", Buffer.from("1"));
      await tx.appendAudit({ operation: "update", path: "a", success: true });
    });
    expect(await ops("audit_append")).toBe(1);
    expect((await raw.audit.query()).map((row) => row.path)).toEqual(["a"]);
  });

  test("the audit store of the backend is kept and recorded", async () => {
    const audited = storage as StorageBackend & { audit?: { append: (e: object) => Promise<unknown>; query: () => Promise<unknown[]> } };
    await audited.audit?.append({ operation: "read", path: "p", success: true });
    expect(await audited.audit?.query()).toHaveLength(1);
    expect(await ops("audit_append")).toBe(1);
    expect(await ops("audit_query")).toBe(1);
  });

  test("a scan is one operation, whether it runs to the end or stops early", async () => {
    for (let i = 0; i < 10; i++) await storage.put(`s/${i}`, Buffer.from(String(i)));
    const all: string[] = [];
    for await (const entry of storage.scan("s/")) all.push(entry.key);
    expect(all).toHaveLength(10);
    for await (const entry of storage.scan("s/")) {
      if (entry.key === "s/3") break;
    }
    expect(await ops("scan")).toBe(2);
    expect(await durationCount("scan")).toBe(2);
    const failing = storage.scan("/bad")[Symbol.asyncIterator]();
    await expect(failing.next()).rejects.toMatchObject({ code: "INVALID_KEY" });
    expect(await errors("scan", "INVALID_KEY")).toBe(1);
  });

  test("after close, operations fail with CLOSED and are counted as such", async () => {
    await storage.close();
    await expect(storage.get("k")).rejects.toMatchObject({ code: "CLOSED" });
    expect(await errors("get", "CLOSED")).toBe(1);
  });

  test("two backends share one registry, told apart by the backend label", async () => {
    const other = withMetrics(SqliteBackend.open({ path: ":memory:" }), { registry, backendLabel: "sqlite-audit" });
    try {
      await other.put("x", Buffer.from("1"));
      await storage.put("x", Buffer.from("1"));
      await storage.put("y", Buffer.from("1"));
      expect(await sample(StorageMetricName.OPERATIONS, { backend: "sqlite-audit", operation: "put" })).toBe(1);
      expect(await ops("put")).toBe(2);
      const text = await registry.metrics();
      expect(text.match(/^# TYPE egide_storage_operations_total counter$/gm)).toHaveLength(1);
    } finally {
      await other.close();
    }
  });

  test("the exposition names all four metrics of the specification", async () => {
    await storage.get("k");
    const text = await registry.metrics();
    for (const name of Object.values(StorageMetricName)) expect(text).toContain(`# TYPE ${name}`);
    expect(text).toContain('egide_storage_operation_duration_seconds_bucket{le="0.0001",backend="sqlite",operation="get"}');
  });
});
