import fc from "fast-check";
import { expect, it } from "vitest";
import type { StorageBackend } from "@egide/storage-core";
import { clearBackend } from "./clear-backend.js";
import { collectScan } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { MIN_DIFFERENTIAL_OPERATIONS } from "./conformance-options.js";
import {
  keySetArbitrary,
  operationArbitrary,
  operationCount,
  pageQueryArbitrary,
  runOperation,
  snapshotOf,
} from "./differential-operations.js";
import { ReferenceModel } from "./reference-model.js";
import { SLOW_TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { utf8 } from "./utf8.js";

/** fast-check stops looking (and shrinking) after this long, so a slow backend fails instead of hanging. */
const TIME_LIMIT_MS = 45_000;

/** Empties the backend between runs and checks that it really is empty. */
async function reset(backend: StorageBackend): Promise<void> {
  await clearBackend(backend);
  expect(await collectScan(backend, ""), "the backend is not empty after deleting every scanned key").toEqual([]);
}

/**
 * The differential test: random sequences of operations (plain calls and small transactions,
 * some rolled back or read-only, a few with invalid keys) run against the backend and against
 * the {@link ReferenceModel}; every result and the final content must agree. Then random page
 * cursors over random key sets.
 */
export function exerciseDifferential(context: ConformanceContext): void {
  const runs = context.options.differentialRuns;
  // Long enough runs that `runs × minLength` reaches the minimum number of operations.
  const minLength = Math.ceil(MIN_DIFFERENTIAL_OPERATIONS / runs);
  const maxLength = Math.max(60, minLength + 20);

  it(
    `random operation sequences agree with the reference model (${runs} runs, at least ${MIN_DIFFERENTIAL_OPERATIONS} operations)`,
    async () => {
      const backend = context.backend();
      let operations = 0;
      let completedRuns = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(operationArbitrary, { minLength, maxLength }), async (sequence) => {
          await reset(backend);
          const model = new ReferenceModel({ maxValueBytes: context.options.maxValueBytes });
          for (const [index, op] of sequence.entries()) {
            const expected = await runOperation(model, op);
            const actual = await runOperation(backend, op);
            expect(actual, `operation ${index}: ${JSON.stringify(op)}`).toEqual(expected);
            operations += operationCount(op);
          }
          expect(await snapshotOf(backend), "final content").toEqual(await snapshotOf(model));
          completedRuns++;
        }),
        { numRuns: runs, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: true },
      );
      expect(completedRuns).toBeGreaterThanOrEqual(runs);
      expect(operations).toBeGreaterThanOrEqual(MIN_DIFFERENTIAL_OPERATIONS);
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  it(
    "random listPage cursors and limits, and page walks, agree with the reference model",
    async () => {
      const backend = context.backend();
      await fc.assert(
        fc.asyncProperty(
          keySetArbitrary,
          fc.array(pageQueryArbitrary, { minLength: 10, maxLength: 20 }),
          fc.integer({ min: 1, max: 3 }),
          async (keys, queries, pageSize) => {
            await reset(backend);
            const model = new ReferenceModel();
            await backend.transaction(async (tx) => {
              for (const key of keys) await tx.put(key, utf8(key));
            });
            for (const key of keys) await model.put(key, utf8(key));
            for (const { prefix, after, limit } of queries) {
              const label = `listPage(${JSON.stringify(prefix)}, ${JSON.stringify(after)}, ${limit})`;
              expect(await backend.listPage(prefix, after, limit), label).toEqual(await model.listPage(prefix, after, limit));
              // Walking the listing page by page reassembles list(prefix).
              const walked: string[] = [];
              for (let cursor = ""; ; ) {
                const page = await backend.listPage(prefix, cursor, pageSize);
                if (page.length === 0) break;
                walked.push(...page);
                cursor = page[page.length - 1] as string;
                expect(walked.length, `walk of ${JSON.stringify(prefix)} does not end`).toBeLessThanOrEqual(keys.length);
              }
              expect(walked, `walk of ${JSON.stringify(prefix)} by ${pageSize}`).toEqual(await model.list(prefix));
            }
          },
        ),
        { numRuns: 30, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: true },
      );
    },
    SLOW_TEST_TIMEOUT_MS,
  );
}
