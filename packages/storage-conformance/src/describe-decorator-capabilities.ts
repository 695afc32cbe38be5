import type { StorageBackend } from "@egide/storage-core";
import { describe, expect, it } from "vitest";
import { capabilityDifferences } from "./capability-differences.js";
import { capabilityFixture } from "./capability-fixture.js";
import type { CapabilitySet } from "./capability-fixture.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";

/** Options of {@link describeDecoratorCapabilities}. */
export interface DecoratorCapabilitiesOptions {
  /** The describe() title, e.g. `"withMetrics"`. */
  name: string;
  /** Wraps a backend in the decorator under test. */
  wrap: (inner: StorageBackend) => StorageBackend | Promise<StorageBackend>;
  /** Optional: a fresh real backend to wrap as well (sqlite, postgresql, …). */
  create?: () => Promise<StorageBackend>;
  /** Releases a backend made by `create` (default: `close()`); must accept a closed one. */
  destroy?: (backend: StorageBackend) => Promise<void>;
}

const CASES: ReadonlyArray<{ label: string; caps: CapabilitySet }> = [
  { label: "no optional capability", caps: {} },
  {
    label: "every optional capability",
    caps: {
      putMany: true,
      appendAudit: true,
      audit: true,
      appendMany: true,
      poolStats: true,
      getMany: true,
      transactionGetMany: true,
      subscribeChanges: true,
    },
  },
  { label: "only putMany", caps: { putMany: true } },
  { label: "only appendAudit", caps: { appendAudit: true } },
  { label: "only an audit store without appendMany", caps: { audit: true } },
  { label: "only an audit store with appendMany", caps: { audit: true, appendMany: true } },
  { label: "only poolStats", caps: { poolStats: true } },
  { label: "only getMany", caps: { getMany: true } },
  { label: "only getMany in transactions", caps: { transactionGetMany: true } },
  { label: "getMany on the backend and in transactions", caps: { getMany: true, transactionGetMany: true } },
  { label: "only subscribeChanges", caps: { subscribeChanges: true } },
];

/**
 * Registers, as vitest tests, the check that a storage decorator keeps every optional
 * capability of the backend it wraps and invents none (see `capabilityDifferences`): over
 * fixture backends with none, all and each one of them, and over a real backend from `create`.
 * Run it beside `describeStorageConformance` for every decorator (encrypting barrier, metrics).
 */
export function describeDecoratorCapabilities(options: DecoratorCapabilitiesOptions): void {
  if (typeof options?.name !== "string" || options.name === "")
    throw new TypeError("describeDecoratorCapabilities: `name` must be a non-empty string");
  if (typeof options.wrap !== "function") throw new TypeError("describeDecoratorCapabilities: `wrap` must be a function");
  const destroy = options.destroy ?? ((backend: StorageBackend) => backend.close());

  describe(`decorator capabilities: ${options.name}`, () => {
    for (const { label, caps } of CASES) {
      it(
        `keeps exactly the capabilities of a backend with ${label}`,
        async () => {
          const inner = capabilityFixture(caps);
          const wrapped = await options.wrap(inner);
          try {
            expect(await capabilityDifferences(inner, wrapped)).toEqual([]);
          } finally {
            await wrapped.close();
            await inner.close();
          }
        },
        TEST_TIMEOUT_MS,
      );
    }

    const create = options.create;
    if (create) {
      it(
        "keeps exactly the capabilities of the real backend",
        async () => {
          const inner = await create();
          try {
            const wrapped = await options.wrap(inner);
            try {
              expect(await capabilityDifferences(inner, wrapped)).toEqual([]);
            } finally {
              await wrapped.close();
            }
          } finally {
            await destroy(inner);
          }
        },
        TEST_TIMEOUT_MS,
      );
    }
  });
}
