import { describe, expect, it } from "vitest";
import { isAuditingTransaction, putEntries, wrapAuditStore, wrapStorage, wrapTransaction } from "../src/index.js";
import type { AuditingBackend, StorageBackend, Transaction } from "../src/index.js";
import { memoryStorage } from "./memory-storage.js";

const ALL = { putMany: true, appendAudit: true, audit: true, appendMany: true, poolStats: true };

async function txMembers(backend: StorageBackend): Promise<string[]> {
  return backend.transaction(async (tx) =>
    Object.keys(tx)
      .filter((k) => typeof (tx as unknown as Record<string, unknown>)[k] === "function")
      .sort(),
  );
}

describe("wrapStorage", () => {
  it("forwards every member of the contract when nothing is overridden", async () => {
    const inner = memoryStorage();
    const wrapped = wrapStorage(inner);
    expect(wrapped.type).toBe("memory");
    await wrapped.put("a/b", Buffer.from("1"));
    expect((await wrapped.get("a/b"))?.toString()).toBe("1");
    expect(await wrapped.exists("a/b")).toBe(true);
    expect(await wrapped.list("")).toEqual(["a/"]);
    expect(await wrapped.listPage("a/", "", 10)).toEqual(["b"]);
    const scanned: string[] = [];
    for await (const entry of wrapped.scan("")) scanned.push(entry.key);
    expect(scanned).toEqual(["a/b"]);
    await wrapped.transaction(async (tx) => tx.delete("a/b"));
    expect(inner.data.size).toBe(0);
    expect((await wrapped.health()).status).toBe("healthy");
    await wrapped.close();
  });

  it("keeps every optional capability the backend has", async () => {
    const inner = memoryStorage(ALL) as unknown as AuditingBackend & { poolStats(): { active: number } };
    const wrapped = wrapStorage(inner);
    expect(wrapped.poolStats().active).toBe(1);
    expect(typeof wrapped.audit.appendMany).toBe("function");
    await wrapped.audit.appendMany?.([{ operation: "a", path: "p", success: true }]);
    expect(await wrapped.audit.query()).toHaveLength(1);
    expect(await txMembers(wrapped)).toEqual(["appendAudit", "delete", "exists", "get", "list", "listPage", "put", "putMany"]);
    await wrapped.transaction(async (tx) => {
      expect(isAuditingTransaction(tx)).toBe(true);
      await putEntries(tx, [{ key: "k", value: Buffer.from("v") }]);
    });
  });

  it("invents no optional capability, even when the decorator overrides it", async () => {
    const inner = memoryStorage();
    const wrapped = wrapStorage(inner, {
      poolStats: () => ({ active: 7 }),
      wrapAudit: () => ({}),
      wrapTransaction: () => ({ putMany: async () => undefined, appendAudit: async () => Promise.reject(new Error("no")) }),
    });
    expect("poolStats" in wrapped).toBe(false);
    expect("audit" in wrapped).toBe(false);
    expect(await txMembers(wrapped)).toEqual(["delete", "exists", "get", "list", "listPage", "put"]);
    const store = wrapStorage(memoryStorage({ audit: true }), {
      wrapAudit: () => ({ appendMany: async () => [] }),
    }) as unknown as AuditingBackend;
    expect("appendMany" in store.audit).toBe(false);
  });

  it("runs overrides, with this bound to the overrides, and forwards the rest", async () => {
    const inner = memoryStorage(ALL);
    const calls: string[] = [];
    class Decorator {
      readonly tag = "d";
      get(key: string) {
        calls.push(`${this.tag}:get:${key}`);
        return inner.get(key);
      }
      transaction<T>(fn: (tx: Transaction) => Promise<T>, options?: { readOnly?: boolean }) {
        calls.push(`${this.tag}:tx:${options?.readOnly === true}`);
        return inner.transaction(fn, options);
      }
      wrapTransaction(tx: Transaction, options: { readOnly?: boolean }) {
        return {
          putMany: (entries: readonly { key: string; value: Buffer }[]) => {
            calls.push(`putMany:${entries.length}:${options.readOnly === true}`);
            return tx.putMany?.(entries) as Promise<void>;
          },
        };
      }
      wrapAudit() {
        return {
          appendMany: async () => {
            calls.push("appendMany");
            return [];
          },
        };
      }
      poolStats() {
        return { active: 42 };
      }
    }
    const wrapped = wrapStorage(inner, new Decorator()) as unknown as AuditingBackend & { poolStats(): { active: number } };
    await wrapped.get("x");
    await wrapped.transaction(async (tx) => tx.putMany?.([{ key: "a", value: Buffer.from("1") }]));
    await wrapped.transaction(async (tx) => tx.get("a"), { readOnly: true });
    await wrapped.audit.appendMany?.([]);
    expect(wrapped.poolStats().active).toBe(42);
    expect(calls).toEqual(["d:get:x", "d:tx:false", "putMany:1:false", "d:tx:true", "appendMany"]);
    expect(inner.data.get("a")?.toString()).toBe("1");
  });

  it("forwarded calls reach the inner object's current member", async () => {
    const inner = memoryStorage();
    const wrapped = wrapStorage(inner);
    (inner as { get: StorageBackend["get"] }).get = async () => Buffer.from("patched");
    expect((await wrapped.get("k"))?.toString()).toBe("patched");
  });
});

describe("wrapTransaction and wrapAuditStore", () => {
  it("mirror the inner object's optional members", async () => {
    const bare = memoryStorage();
    const full = memoryStorage(ALL) as unknown as AuditingBackend;
    await bare.transaction(async (tx) => expect(isAuditingTransaction(wrapTransaction(tx))).toBe(false));
    await full.transaction(async (tx) => expect(isAuditingTransaction(wrapTransaction(tx))).toBe(true));
    expect(typeof wrapAuditStore(full.audit).appendMany).toBe("function");
    expect("appendMany" in wrapAuditStore({ append: full.audit.append, query: full.audit.query })).toBe(false);
  });
});
