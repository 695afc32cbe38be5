import { ReferenceModel } from "@egide/storage-conformance";
import { getValues } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { StorageMetricName, StorageOperation, withMetrics } from "../src/index.js";
import { sampleMetric } from "./sample-metric.js";

// getMany is one operation, `get_many`, on the backend and in transactions. The inner backend is
// the conformance suite's reference model, which offers getMany whatever the SQL adapters do
// today; the decorator never looks past the storage contract, so what it records does not
// depend on the backend.

let registry: Registry;
let storage: StorageBackend;

beforeEach(() => {
  registry = new Registry();
  storage = withMetrics(new ReferenceModel({ getMany: true }), { registry, backendLabel: "reference" });
});

afterEach(async () => {
  await storage.close();
});

const ops = (operation: string) => sampleMetric(registry, StorageMetricName.OPERATIONS, { backend: "reference", operation });
const durationCount = (operation: string) =>
  sampleMetric(registry, StorageMetricName.DURATION, { backend: "reference", operation }, "_count");
const errors = (operation: string, code: string) =>
  sampleMetric(registry, StorageMetricName.ERRORS, { backend: "reference", operation, code });

/** The backend's getMany, which the metered reference model must have. */
function getManyOf(backend: Pick<StorageBackend, "getMany">): NonNullable<StorageBackend["getMany"]> {
  const getMany = backend.getMany;
  if (typeof getMany !== "function") throw new Error("the metered backend lost getMany");
  return (keys) => getMany.call(backend, keys);
}

describe("getMany", () => {
  test("is one get_many operation, counted and timed, whatever the number of keys, results untouched", async () => {
    await storage.put("a", Buffer.from("A"));
    await storage.put("b", Buffer.from("B"));
    const values = await getManyOf(storage)(["b", "missing", "a", "b"]);
    expect(values.map((value) => value?.toString() ?? null)).toEqual(["B", null, "A", "B"]);
    expect(await getManyOf(storage)([])).toEqual([]);
    expect(StorageOperation.GET_MANY).toBe("get_many");
    expect(await ops("get_many")).toBe(2);
    expect(await durationCount("get_many")).toBe(2);
    // Not recorded as gets as well.
    expect(await ops("get")).toBe(0);
  });

  test("in read-write and read-only transactions it is recorded under the same name", async () => {
    await storage.put("k", Buffer.from("v"));
    await storage.transaction(async (tx) => {
      await tx.put("t", Buffer.from("t"));
      expect((await getManyOf(tx)(["t", "k"])).map((value) => value?.toString())).toEqual(["t", "v"]);
    });
    await storage.transaction(async (tx) => getManyOf(tx)(["k"]), { readOnly: true });
    expect(await ops("get_many")).toBe(2);
    expect(await ops("transaction")).toBe(2);
  });

  test("a failure is counted by its StorageError code and still counts as an operation", async () => {
    await expect(getManyOf(storage)(["ok", "/leading-slash"])).rejects.toMatchObject({ code: "INVALID_KEY" });
    await storage.transaction(async (tx) => {
      await expect(getManyOf(tx)(["a//b"])).rejects.toMatchObject({ code: "INVALID_KEY" });
    });
    expect(await errors("get_many", "INVALID_KEY")).toBe(2);
    expect(await ops("get_many")).toBe(2);
  });

  test("over a backend without getMany there is none to record: getValues falls back to gets", async () => {
    const plain = withMetrics(new ReferenceModel(), { registry, backendLabel: "plain" });
    try {
      expect(plain.getMany).toBeUndefined();
      await plain.put("a", Buffer.from("A"));
      expect((await getValues(plain, ["a", "b"])).map((value) => value?.toString() ?? null)).toEqual(["A", null]);
      expect(await sampleMetric(registry, StorageMetricName.OPERATIONS, { backend: "plain", operation: "get" })).toBe(2);
      expect(await sampleMetric(registry, StorageMetricName.OPERATIONS, { backend: "plain", operation: "get_many" })).toBe(0);
    } finally {
      await plain.close();
    }
  });
});
