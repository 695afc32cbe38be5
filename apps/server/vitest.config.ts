import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Test files run one after another: the fault tests assert deadlines in milliseconds, and the
// conformance suites would otherwise compete with them for this machine's two cores.
// The end-to-end tests start their servers through @egide/test-server, which imports
// @egide/server: here that name means this package's sources, so the tests exercise the code
// being edited (not the last build) and share its modules with the tests that import ../src.
export default defineConfig({
  resolve: {
    alias: [{ find: /^@egide\/server$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) }],
  },
  test: {
    fileParallelism: false,
  },
});
