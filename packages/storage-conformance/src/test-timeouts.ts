/**
 * Timeout of a test that does a lot of I/O (concurrency, large scans, the differential test).
 * Generous because a real database on a loaded CI machine is slower than the reference model.
 */
export const SLOW_TEST_TIMEOUT_MS = 60_000;

/** Timeout of an ordinary test that does a bounded, small number of operations. */
export const TEST_TIMEOUT_MS = 15_000;
