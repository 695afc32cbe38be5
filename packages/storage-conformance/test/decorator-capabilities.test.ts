import { wrapStorage } from "@egide/storage-core";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import { describe, expect, it } from "vitest";
import {
  ReferenceModel,
  capabilityDifferences,
  capabilityFixture,
  describeDecoratorCapabilities,
  offeredCapabilities,
  requiredBackend,
} from "../src/index.js";

// The check run on storage-core's own helper: a decorator built with wrapStorage keeps every
// capability, overriding nothing or everything.
describeDecoratorCapabilities({
  name: "wrapStorage without overrides",
  wrap: (inner) => wrapStorage(inner),
  create: async () => new ReferenceModel(),
});
describeDecoratorCapabilities({
  name: "wrapStorage without overrides, over a model with getMany and a change feed",
  wrap: (inner) => wrapStorage(inner),
  create: async () => new ReferenceModel({ getMany: true, changeFeed: true }),
});
describeDecoratorCapabilities({
  name: "wrapStorage overriding every optional member",
  wrap: (inner) =>
    wrapStorage(inner, {
      poolStats: () => ({ active: 0 }),
      getMany: async (keys) => keys.map(() => null),
      subscribeChanges: () => ({ live: false, close: () => undefined }),
      wrapAudit: (audit) => ({ appendMany: async () => [], append: (entry) => audit.append(entry) }),
      wrapTransaction: () => ({
        putMany: async () => undefined,
        getMany: async (keys) => keys.map(() => null),
        appendAudit: async () => Promise.reject(new Error("unused")),
      }),
    }),
});

/** A decorator written by hand that forwards only the required members, as metrics once did. */
const handForwarding = requiredBackend;

describe("capabilityDifferences", () => {
  it("reports every capability a hand-forwarding decorator drops", async () => {
    const inner = capabilityFixture({
      putMany: true,
      appendAudit: true,
      audit: true,
      appendMany: true,
      poolStats: true,
      getMany: true,
      transactionGetMany: true,
      subscribeChanges: true,
    });
    expect(await capabilityDifferences(inner, handForwarding(inner))).toEqual([
      "backend.audit: object in the wrapped backend, absent in the decorator",
      "backend.poolStats: function in the wrapped backend, absent in the decorator",
      "backend.getMany: function in the wrapped backend, absent in the decorator",
      "backend.subscribeChanges: function in the wrapped backend, absent in the decorator",
      "transaction.putMany: function in the wrapped backend, absent in the decorator",
      "transaction.getMany: function in the wrapped backend, absent in the decorator",
      "transaction.appendAudit: function in the wrapped backend, absent in the decorator",
      "read-only transaction.putMany: function in the wrapped backend, absent in the decorator",
      "read-only transaction.getMany: function in the wrapped backend, absent in the decorator",
      "read-only transaction.appendAudit: function in the wrapped backend, absent in the decorator",
    ]);
  });

  it("reports a capability a decorator invents", async () => {
    const inner = new ReferenceModel();
    const inventing: StorageBackend = {
      ...handForwarding(inner),
      transaction: (fn, options) =>
        inner.transaction((tx) => fn(Object.assign(Object.create(tx) as Transaction, { putMany: async () => undefined })), options),
    };
    expect(await capabilityDifferences(inner, inventing)).toEqual([
      "transaction.putMany: absent in the wrapped backend, function in the decorator",
      "read-only transaction.putMany: absent in the wrapped backend, function in the decorator",
    ]);
  });

  it("reports a getMany or change feed a decorator invents", async () => {
    const inner = new ReferenceModel();
    const inventing: StorageBackend = {
      ...handForwarding(inner),
      getMany: async (keys) => keys.map(() => null),
      subscribeChanges: () => ({ live: false, close: () => undefined }),
      transaction: (fn, options) =>
        inner.transaction((tx) => fn(Object.assign(Object.create(tx) as Transaction, { getMany: async () => [] })), options),
    };
    expect(await capabilityDifferences(inner, inventing)).toEqual([
      "backend.getMany: absent in the wrapped backend, function in the decorator",
      "backend.subscribeChanges: absent in the wrapped backend, function in the decorator",
      "transaction.getMany: absent in the wrapped backend, function in the decorator",
      "read-only transaction.getMany: absent in the wrapped backend, function in the decorator",
    ]);
  });

  it("the fixture offers each capability it is asked for, and only those", async () => {
    for (const caps of [{}, { getMany: true }, { transactionGetMany: true }, { subscribeChanges: true }]) {
      const fixture = capabilityFixture(caps);
      const offered = await offeredCapabilities(fixture);
      const getMany = "getMany" in caps ? "backend" : "transactionGetMany" in caps ? "transaction" : false;
      expect(offered, JSON.stringify(caps)).toEqual({ getMany, changeFeed: "subscribeChanges" in caps });
      await fixture.close();
    }
  });

  it("reports an audit store that loses appendMany", async () => {
    const inner = capabilityFixture({ audit: true, appendMany: true }) as StorageBackend & { audit: { append: unknown; query: unknown } };
    const wrapped = { ...handForwarding(inner), audit: { append: inner.audit.append, query: inner.audit.query } };
    expect(await capabilityDifferences(inner, wrapped)).toEqual([
      "audit.appendMany: function in the wrapped backend, absent in the decorator",
    ]);
  });
});
