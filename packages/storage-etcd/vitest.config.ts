import { defineConfig } from "vitest/config";

// Test files run one after another: the fault tests assert deadlines in milliseconds, and the
// conformance suites would otherwise compete with them for this machine's two cores.
export default defineConfig({
  test: {
    fileParallelism: false,
  },
});
