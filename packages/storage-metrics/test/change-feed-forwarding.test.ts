import { ReferenceModel } from "@egide/storage-conformance";
import type { ChangeFeedListener, StorageBackend, StorageChange } from "@egide/storage-core";
import { Registry } from "prom-client";
import { expect, test } from "vitest";
import { StorageMetricName, withMetrics } from "../src/index.js";

// The change feed goes through the decorator unchanged and unmetered: wrapStorage forwards
// subscribeChanges to the wrapped backend (the decorator keeps keys as they are), and a
// subscription is not a storage operation.

function recorder(): ChangeFeedListener & { changes: StorageChange[]; live: (live: boolean) => void; told: boolean[] } {
  const changes: StorageChange[] = [];
  const told: boolean[] = [];
  return { changes, told, change: (change) => void changes.push(change), live: (live) => void told.push(live) };
}

function subscribe(backend: StorageBackend, listener: ChangeFeedListener) {
  const subscribeChanges = backend.subscribeChanges;
  if (typeof subscribeChanges !== "function") throw new Error("no change feed");
  return subscribeChanges.call(backend, listener);
}

test("subscriptions through the decorator are the wrapped backend's, and record no operation", async () => {
  const registry = new Registry();
  const inner = new ReferenceModel({ changeFeed: true });
  const storage = withMetrics(inner, { registry, backendLabel: "reference" });
  const throughDecorator = recorder();
  const direct = recorder();
  const viaDecorator = subscribe(storage, throughDecorator);
  const viaInner = subscribe(inner, direct);
  try {
    expect(viaDecorator.live).toBe(true);
    expect(throughDecorator.told).toEqual([true]);
    await storage.put("k", Buffer.from("v"));
    await inner.delete("k");
    // The same changes, with the same positions: one feed, not a copy.
    expect(throughDecorator.changes).toEqual(direct.changes);
    expect(throughDecorator.changes.map((change) => change.keys)).toEqual([["k"], ["k"]]);
    const operations = (await registry.getMetricsAsJSON()).find((metric) => metric.name === StorageMetricName.OPERATIONS);
    expect(operations?.values.map((value) => value.labels.operation)).toEqual(["put"]);
    viaDecorator.close();
    await storage.put("k", Buffer.from("w"));
    expect(throughDecorator.changes).toHaveLength(2);
    expect(direct.changes).toHaveLength(3);
  } finally {
    viaInner.close();
    await storage.close();
  }
});

test("a backend without a change feed gets none from the decorator", async () => {
  const storage = withMetrics(new ReferenceModel(), { registry: new Registry() });
  try {
    expect(storage.subscribeChanges).toBeUndefined();
    expect("subscribeChanges" in storage).toBe(false);
  } finally {
    await storage.close();
  }
});
