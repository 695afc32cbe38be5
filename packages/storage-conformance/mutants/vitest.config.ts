import { defineConfig } from "vitest/config";
export default defineConfig({ test: { include: ["mutants/mutants.suite.ts"] } });
