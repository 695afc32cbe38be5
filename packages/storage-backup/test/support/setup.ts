import { beforeAll, beforeEach } from "vitest";

/**
 * Runs a file's setup once (like `beforeAll`), but when it fails (PostgreSQL unreachable, …)
 * every test of the file FAILS with that error instead of being reported as skipped: a skipped
 * backend test looks too much like a passing one.
 */
export function setupOrFailEveryTest(setup: () => Promise<void>, timeoutMs = 60_000): void {
  let failure: { error: unknown } | undefined;
  beforeAll(async () => {
    try {
      await setup();
    } catch (error) {
      failure = { error };
    }
  }, timeoutMs);
  beforeEach(() => {
    if (failure) throw failure.error;
  });
}
