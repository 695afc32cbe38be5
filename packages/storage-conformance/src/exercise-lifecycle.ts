import { expect, it } from "vitest";
import { StorageErrorCode } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { collectScan } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { expectStorageError } from "./expect-storage-error.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { utf8 } from "./utf8.js";

/** Every operation of the contract, as a call to make on a closed backend. */
const OPERATIONS: readonly [string, (backend: StorageBackend) => Promise<unknown>][] = [
  ["get", (b) => b.get("k")],
  ["put", (b) => b.put("k", utf8("v"))],
  ["delete", (b) => b.delete("k")],
  ["exists", (b) => b.exists("k")],
  ["list", (b) => b.list("")],
  ["listPage", (b) => b.listPage("", "", 10)],
  ["scan", (b) => collectScan(b, "")],
  ["transaction", (b) => b.transaction(async (tx) => tx.get("k"))],
  ["read-only transaction", (b) => b.transaction(async (tx) => tx.get("k"), { readOnly: true })],
];

/** Lifecycle: `type`, `health()`, and `close()` (idempotent, and `CLOSED` afterwards). */
export function exerciseLifecycle(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), TEST_TIMEOUT_MS);
  };

  test("type is a non-empty string", async (b) => {
    expect(typeof b.type).toBe("string");
    expect(b.type.length).toBeGreaterThan(0);
  });

  test('health() resolves "healthy" with a numeric latencyMs >= 0', async (b) => {
    const health = await b.health();
    expect(health.status).toBe("healthy");
    expect(typeof health.latencyMs).toBe("number");
    expect(Number.isFinite(health.latencyMs)).toBe(true);
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
  });

  test("a fresh backend is empty", async (b) => {
    expect(await b.list("")).toEqual([]);
    expect(await collectScan(b, "")).toEqual([]);
  });

  for (const [name, call] of OPERATIONS) {
    test(`${name} after close() fails with CLOSED`, async (b) => {
      await b.put("k", utf8("v"));
      await b.close();
      await expectStorageError(() => call(b), StorageErrorCode.CLOSED);
    });
  }

  test("close() is idempotent, sequentially and concurrently", async (b) => {
    await expect(Promise.all([b.close(), b.close()])).resolves.toBeDefined();
    await expect(b.close()).resolves.toBeUndefined();
    await expectStorageError(() => b.get("k"), StorageErrorCode.CLOSED);
  });

  test('health() after close() resolves "unhealthy" instead of throwing', async (b) => {
    await b.close();
    const health = await b.health();
    expect(health.status).toBe("unhealthy");
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
  });
}
