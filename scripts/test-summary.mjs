#!/usr/bin/env node
// Adds up the vitest JSON reports of every package (written by each package's `test` script)
// and prints one closing line, "N passed, N failed", for the whole workspace.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
let passed = 0;
let failed = 0;
let skipped = 0;
for (const group of ["packages", "apps"]) {
  if (!existsSync(join(root, group))) continue;
  for (const name of readdirSync(join(root, group))) {
    const report = join(root, group, name, "test-results.json");
    if (!existsSync(report)) continue;
    const result = JSON.parse(readFileSync(report, "utf8"));
    // A test file that failed to load (say, PostgreSQL was down) ran no tests: count it as one
    // failure so the closing line cannot read "0 failed".
    const unloaded = result.testResults.filter((file) => file.status === "failed" && file.assertionResults.length === 0).length;
    passed += result.numPassedTests;
    failed += result.numFailedTests + unloaded;
    skipped += result.numPendingTests + result.numTodoTests;
    console.log(`${group}/${name}: ${result.numPassedTests} passed, ${result.numFailedTests + unloaded} failed`);
  }
}
// The packed-install check and the conformance suite's mutation check, which run before this
// summary (and stop the command when they fail), are one more passing test each.
passed += Number(process.argv.includes("--with-packed-install"));
passed += Number(process.argv.includes("--with-template-path"));
passed += Number(process.argv.includes("--with-mutants"));
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || skipped > 0 ? 1 : 0);
