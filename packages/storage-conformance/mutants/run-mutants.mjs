// Mutation check of the conformance suite: runs it against BuggyBackend with each deliberate bug
// and fails unless the correct baseline passes and every mutant fails at least one test.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const reportDir = mkdtempSync(join(tmpdir(), "egide-mutants-"));
const output = join(reportDir, "report.json");
spawnSync("npx", ["vitest", "run", "--config", "mutants/vitest.config.ts", "--reporter=json", `--outputFile=${output}`], {
  stdio: "ignore",
});
const report = JSON.parse(readFileSync(output, "utf8"));
rmSync(reportDir, { recursive: true, force: true });
const failures = new Map();
for (const result of report.testResults.flatMap((file) => file.assertionResults)) {
  const bug = /storage conformance: bug (\S+)/.exec(result.ancestorTitles.join(" > "))?.[1];
  if (!failures.has(bug)) failures.set(bug, []);
  if (result.status !== "passed") failures.get(bug).push(result.title);
}
let ok = true;
for (const [bug, failed] of failures) {
  const caught = bug === "none" ? failed.length === 0 : failed.length > 0;
  ok &&= caught;
  console.log(
    `${caught ? "ok  " : "FAIL"} ${bug}: ${failed.length} failing test(s)${bug === "none" && failed.length ? `: ${failed.join("; ")}` : ""}`,
  );
}
console.log(ok ? "every mutant was caught" : "the suite missed a mutant (or failed the correct baseline)");
process.exit(ok ? 0 : 1);
