import { defineConfig } from "vitest/config";

// Test files run one after another: the fault tests assert deadlines in milliseconds, and the
// conformance suites would otherwise compete with them for this machine's two cores.
// Most tests run the built binary several times (a Node.js process start each, about 0.3 s on
// this machine), so a test gets more than vitest's default 5 s; test files that mark their
// tests concurrent run at most three at a time, enough to keep both cores busy.
export default defineConfig({
  test: {
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    maxConcurrency: 3,
  },
});
