import { afterEach, beforeEach, describe } from "vitest";
import type { StorageBackend } from "@egide/storage-core";
import type { ConformanceContext } from "./conformance-context.js";
import { resolveConformanceOptions } from "./conformance-options.js";
import type { StorageConformanceOptions } from "./conformance-options.js";
import { exerciseBackend } from "./exercise-backend.js";
import { exerciseByteOrder } from "./exercise-byte-order.js";
import { exerciseChangeFeed } from "./exercise-change-feed.js";
import { exerciseConcurrency } from "./exercise-concurrency.js";
import { exerciseDeclaredCapabilities } from "./exercise-declared-capabilities.js";
import { exerciseDifferential } from "./exercise-differential.js";
import { exerciseExistsDelete } from "./exercise-exists-delete.js";
import { exerciseGetMany } from "./exercise-get-many.js";
import { exerciseKeys } from "./exercise-keys.js";
import { exerciseLifecycle } from "./exercise-lifecycle.js";
import { exerciseListPage } from "./exercise-list-page.js";
import { exerciseListPrefix } from "./exercise-list-prefix.js";
import { exerciseScan } from "./exercise-scan.js";
import { exercisePutMany } from "./exercise-put-many.js";
import { exerciseTransactions } from "./exercise-transactions.js";
import { exerciseValues } from "./exercise-values.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";

/**
 * Registers the whole storage conformance suite as vitest tests. Call it at the top level of a
 * backend package's test file:
 *
 * ```ts
 * describeStorageConformance({ name: "sqlite (file)", create: () => openTempSqlite() });
 * ```
 *
 * Every test gets a fresh backend from `create` (in `beforeEach`) and hands it to `destroy`
 * afterwards (default: `close()`), so tests never depend on each other's leftovers.
 *
 * Optional capabilities with cases of their own (`getMany`, the change feed) are declared in
 * `capabilities`; a backend that offers an undeclared one, or lacks a declared one, fails:
 *
 * ```ts
 * describeStorageConformance({ name: "foo", create, capabilities: { getMany: true, changeFeed: true } });
 * ```
 */
export function describeStorageConformance(options: StorageConformanceOptions): void {
  const resolved = resolveConformanceOptions(options);

  describe(`storage conformance: ${resolved.name}`, () => {
    let current: StorageBackend | undefined;

    beforeEach(async () => {
      current = await resolved.create();
    }, TEST_TIMEOUT_MS);

    afterEach(async () => {
      const backend = current;
      current = undefined;
      if (backend) await resolved.destroy(backend);
    }, TEST_TIMEOUT_MS);

    const context: ConformanceContext = {
      options: resolved,
      backend() {
        if (!current) throw new Error("storage conformance: no backend outside a running test");
        return current;
      },
    };

    describe("ExerciseBackend (OpenBao)", () => exerciseBackend(context));
    describe("ExerciseBackend_ListPrefix (OpenBao) and list", () => exerciseListPrefix(context));
    describe("listPage", () => exerciseListPage(context));
    describe("transactions", () => exerciseTransactions(context));
    describe("bulk puts", () => exercisePutMany(context));
    describe("keys", () => exerciseKeys(context));
    describe("values", () => exerciseValues(context));
    describe("exists and delete", () => exerciseExistsDelete(context));
    describe("byte order", () => exerciseByteOrder(context));
    describe("scan", () => exerciseScan(context));
    describe("concurrency", () => exerciseConcurrency(context));
    describe("lifecycle", () => exerciseLifecycle(context));
    describe("differential against the reference model", () => exerciseDifferential(context));
    // Optional capabilities: their cases are registered from the declaration, and the check
    // below fails when the backend offers one that is not declared (or lacks a declared one).
    describe("declared optional capabilities", () => exerciseDeclaredCapabilities(context));
    const { backendGetMany, transactionGetMany, changeFeed } = resolved.capabilities;
    if (backendGetMany || transactionGetMany) describe("getMany", () => exerciseGetMany(context));
    if (changeFeed) describe("change feed", () => exerciseChangeFeed(context));
  });
}
