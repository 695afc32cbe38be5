import type { StorageBackend } from "@egide/storage-core";
import type { ResolvedConformanceOptions } from "./conformance-options.js";

/**
 * What every group of conformance tests receives: the options, and the backend of the test
 * that is running (a fresh one per test, created in `beforeEach`).
 */
export interface ConformanceContext {
  /** The resolved options of the backend under test. */
  readonly options: ResolvedConformanceOptions;
  /** The fresh backend of the running test; throws outside a test. */
  backend(): StorageBackend;
}
