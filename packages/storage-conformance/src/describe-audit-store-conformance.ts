import { StorageError, isAuditingTransaction } from "@egide/storage-core";
import type { AuditingBackend, AuditQuery, Transaction } from "@egide/storage-core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";

/** Options of {@link describeAuditStoreConformance}. */
export interface AuditStoreConformanceOptions {
  /** The describe() title. */
  name: string;
  /** A fresh backend with an empty audit log, for every test. */
  create: () => Promise<AuditingBackend>;
  /** Disposes of a backend after its test (default: `close()`); must accept a closed one. */
  destroy?: (backend: AuditingBackend) => Promise<void>;
}

const REQUEST = "6f1c1a84-56c5-4b4e-9a65-9d0d8b2a7c11";
const OTHER_REQUEST = "11111111-2222-4333-8444-555555555555";
const TENANT = "0b8f7a44-1d0e-4a52-8c3e-0e6b1a2f9d10";

/**
 * Registers the audit-store contract as vitest tests: every column of the specification's
 * `egide_audit_log` round-trips, defaults are filled, every filter works (path prefixes are
 * literal), malformed entries are refused, a closed backend refuses appends (so a server can
 * fail closed), and an audit row is never undone by the rollback of a data transaction.
 * Transactions write audit rows of their own (`appendAudit`) that commit and roll back with
 * them, so a server can make a change and its audit row atomic.
 */
export function describeAuditStoreConformance(options: AuditStoreConformanceOptions): void {
  const destroy = options.destroy ?? ((backend: AuditingBackend) => backend.close());

  describe(`audit store conformance: ${options.name}`, () => {
    let backend: AuditingBackend;
    beforeEach(async () => {
      backend = await options.create();
    }, TEST_TIMEOUT_MS);
    afterEach(() => destroy(backend), TEST_TIMEOUT_MS);

    const paths = async (filter?: AuditQuery) => (await backend.audit.query(filter)).map((r) => r.path);

    it("appends every column of the specification and reads it back", async () => {
      const timestamp = new Date("2026-01-02T03:04:05.678Z");
      const entry = {
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
      };
      const stored = await backend.audit.append(entry);
      expect(typeof stored.id).toBe("number");
      expect(stored.id).toBeGreaterThan(0);
      const [row] = await backend.audit.query({ requestId: REQUEST });
      expect(row).toEqual({ id: stored.id, ...entry });
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
      expect(Math.abs((row?.timestamp.getTime() ?? 0) - before)).toBeLessThan(60_000);
    });

    it("filters by time range, tenant, request, path prefix, operation, success and id, oldest first", async () => {
      const base = Date.parse("2026-03-01T00:00:00Z");
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
      // since is inclusive, until exclusive.
      expect(await paths({ since: new Date(base + 3000), until: new Date(base + 6000) })).toEqual(["secret/a_3", "secret/a_4", "sys/x%5"]);
      expect(await paths({ since: new Date(base + 8000) })).toEqual(["sys/x%8", "sys/x%9"]);
      expect(await paths({ until: new Date(base + 1000) })).toEqual(["secret/a_0"]);
      expect(await paths({ tenantId: TENANT })).toEqual(["secret/a_0", "secret/a_2", "secret/a_4", "sys/x%6", "sys/x%8"]);
      expect(await paths({ requestId: OTHER_REQUEST })).toEqual(["secret/a_4"]);
      expect(await paths({ tenantId: TENANT, requestId: REQUEST, since: new Date(base + 2000) })).toEqual([
        "secret/a_2",
        "sys/x%6",
        "sys/x%8",
      ]);
      expect(await paths({ pathPrefix: "secret/a_" })).toHaveLength(5);
      // '%' and '_' are literal characters, not wildcards.
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

    it("treats a backslash in a path prefix literally, not as an escape", async () => {
      for (const path of ["dir\\_x", "dir\\ax", "dir_x", "dir\\\\y"])
        await backend.audit.append({ operation: "read", path, success: true });
      expect(await paths({ pathPrefix: "dir\\_" })).toEqual(["dir\\_x"]);
      expect(await paths({ pathPrefix: "dir\\" })).toEqual(["dir\\_x", "dir\\ax", "dir\\\\y"]);
      expect(await paths({ pathPrefix: "dir\\\\" })).toEqual(["dir\\\\y"]);
      expect(await paths({ pathPrefix: "dir_" })).toEqual(["dir_x"]);
    });

    it("rejects a malformed entry and stores nothing", async () => {
      const append = (patch: object) => backend.audit.append({ operation: "read", path: "p", success: true, ...patch });
      await expect(append({ requestId: "nope" })).rejects.toThrow(/requestId must be a UUID/);
      await expect(append({ tenantId: "x" })).rejects.toThrow(/tenantId must be a UUID/);
      await expect(append({ sourceIp: "300.1.1.1" })).rejects.toThrow(/sourceIp/);
      await expect(append({ operation: "" })).rejects.toThrow(/operation/);
      await expect(append({ success: "yes" })).rejects.toThrow(/success/);
      expect(await backend.audit.query()).toEqual([]);
    });

    it("fails appends and queries once the backend is closed, so a caller can fail closed", async () => {
      await backend.close();
      await expect(backend.audit.append({ operation: "read", path: "p", success: true })).rejects.toMatchObject({ code: "CLOSED" });
      await expect(backend.audit.query()).rejects.toMatchObject({ code: "CLOSED" });
    });

    it("keeps an audit row appended during a transaction that then rolls back", async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const rollBack = new Error("roll back");
      const tx = backend
        .transaction(async (t) => {
          await t.put("k", Buffer.from("v"));
          entered();
          await gate;
          throw rollBack;
        })
        .then(
          () => expect.fail("the transaction committed"),
          (error: unknown) => {
            if (error !== rollBack) throw error;
          },
        );
      // A put that fails ends the transaction before `inside`: its error is the failure.
      await Promise.race([inside, tx]);
      // Not awaited yet: a backend may queue the append behind the open transaction.
      const append = backend.audit.append({ operation: "update", path: "k", success: false });
      release();
      await tx;
      await append;
      expect(await backend.get("k")).toBeNull();
      expect(await paths()).toEqual(["k"]);
    });

    it("appendMany, when offered, writes rows in order in one commit, all or none", async () => {
      const store = backend.audit;
      if (!store.appendMany) return;
      const records = await store.appendMany([
        { operation: "read", path: "m/1", success: true },
        { operation: "read", path: "m/2", success: false, errorMessage: "denied" },
        { operation: "update", path: "m/3", success: true, requestId: REQUEST },
      ]);
      expect(records.map((r) => r.path)).toEqual(["m/1", "m/2", "m/3"]);
      expect(records[0]!.id).toBeLessThan(records[1]!.id);
      expect(records[1]!.id).toBeLessThan(records[2]!.id);
      expect(await paths()).toEqual(["m/1", "m/2", "m/3"]);
      await expect(
        store.appendMany([
          { operation: "read", path: "m/4", success: true },
          { operation: "read", path: "m/5", success: true, sourceIp: "not-an-address" },
        ]),
      ).rejects.toBeDefined();
      expect(await paths()).toEqual(["m/1", "m/2", "m/3"]);
      expect(await store.appendMany([])).toEqual([]);
    });

    it("commits an audit row appended inside a transaction together with its writes", async () => {
      await backend.transaction(async (tx) => {
        await tx.put("k", Buffer.from("v"));
        const record = await auditing(tx).appendAudit({
          operation: "update",
          path: "k",
          success: true,
          requestId: REQUEST,
          metadata: { status: 204 },
        });
        expect(record.id).toBeGreaterThan(0);
        expect(record.path).toBe("k");
      });
      expect((await backend.get("k"))?.toString()).toBe("v");
      const [row] = await backend.audit.query({ requestId: REQUEST });
      expect(row).toMatchObject({ operation: "update", path: "k", success: true, metadata: { status: 204 } });
    });

    it("rolls an audit row appended inside a transaction back with it", async () => {
      await expect(
        backend.transaction(async (tx) => {
          await tx.put("k", Buffer.from("v"));
          await auditing(tx).appendAudit({ operation: "update", path: "k", success: true });
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await backend.get("k")).toBeNull();
      expect(await paths()).toEqual([]);
    });

    it("refuses an audit row in a read-only transaction, and after the transaction settled", async () => {
      let kept: Transaction | undefined;
      const refused = await backend
        .transaction(
          async (tx) => {
            kept = tx;
            return auditing(tx).appendAudit({ operation: "read", path: "k", success: true });
          },
          { readOnly: true },
        )
        .catch((error: unknown) => error);
      expect(StorageError.isInstance(refused, "READ_ONLY")).toBe(true);
      await backend.transaction(async (tx) => {
        kept = tx;
      });
      await expect(auditing(kept as Transaction).appendAudit({ operation: "read", path: "k", success: true })).rejects.toMatchObject({
        code: "CLOSED",
      });
      expect(await paths()).toEqual([]);
    });
  });
}

function auditing(tx: Transaction) {
  if (!isAuditingTransaction(tx)) throw new Error("the backend's transactions must offer appendAudit (AuditingTransaction)");
  return tx;
}
