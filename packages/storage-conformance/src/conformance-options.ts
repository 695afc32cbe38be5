import { DEFAULT_MAX_VALUE_BYTES } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { resolveDeclaredCapabilities } from "./declared-capabilities.js";
import type { ConformanceCapabilities, DeclaredCapabilities } from "./declared-capabilities.js";

/** The default number of fast-check runs of the differential test. */
export const DEFAULT_DIFFERENTIAL_RUNS = 40;

/**
 * The fewest random operations the differential test checks in total, whatever the number of
 * runs: each run is made long enough that `runs × length` reaches it.
 */
export const MIN_DIFFERENTIAL_OPERATIONS = 1000;

/** What a backend package passes to {@link describeStorageConformance}. */
export interface StorageConformanceOptions {
  /** The title of the `describe` block, e.g. `"sqlite (file)"`. */
  name: string;
  /** Creates a fresh, empty backend. Called once per test (and by tests that need a second one). */
  create: () => Promise<StorageBackend>;
  /**
   * Releases a backend made by `create` (default: `backend.close()`). Some tests close the
   * backend themselves, so this must accept an already closed backend.
   */
  destroy?: (backend: StorageBackend) => Promise<void>;
  /** The value size limit the created backends enforce (default `DEFAULT_MAX_VALUE_BYTES`). */
  maxValueBytes?: number;
  /**
   * fast-check `numRuns` of the differential test (default {@link DEFAULT_DIFFERENTIAL_RUNS}).
   * Runs get longer when there are fewer, so at least {@link MIN_DIFFERENTIAL_OPERATIONS}
   * operations are checked.
   */
  differentialRuns?: number;
  /**
   * The optional capabilities the created backends offer (default: none). The cases of each
   * declared capability run; the suite fails when a backend lacks a declared capability or offers
   * one that is not declared, so a capability is never left untested by omission.
   */
  capabilities?: ConformanceCapabilities;
}

/** {@link StorageConformanceOptions} with every default filled in. */
export interface ResolvedConformanceOptions {
  name: string;
  create: () => Promise<StorageBackend>;
  destroy: (backend: StorageBackend) => Promise<void>;
  maxValueBytes: number;
  differentialRuns: number;
  capabilities: DeclaredCapabilities;
}

/**
 * Fills in defaults and rejects nonsense early, at registration time, so a misconfigured
 * backend test fails loudly instead of running a weaker suite.
 */
export function resolveConformanceOptions(options: StorageConformanceOptions): ResolvedConformanceOptions {
  if (typeof options?.name !== "string" || options.name === "") {
    throw new TypeError("describeStorageConformance: `name` must be a non-empty string");
  }
  if (typeof options.create !== "function") {
    throw new TypeError("describeStorageConformance: `create` must be a function returning a fresh backend");
  }
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1) {
    throw new TypeError("describeStorageConformance: `maxValueBytes` must be a positive integer");
  }
  const differentialRuns = options.differentialRuns ?? DEFAULT_DIFFERENTIAL_RUNS;
  if (!Number.isSafeInteger(differentialRuns) || differentialRuns < 1) {
    throw new TypeError("describeStorageConformance: `differentialRuns` must be a positive integer");
  }
  return {
    name: options.name,
    create: options.create,
    destroy: options.destroy ?? ((backend) => backend.close()),
    maxValueBytes,
    differentialRuns,
    capabilities: resolveDeclaredCapabilities(options.capabilities),
  };
}
