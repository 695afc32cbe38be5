// Mutation check of the conformance suite: runs it against BuggyBackend with each deliberate bug
// and fails unless the correct baseline passes and every mutant fails at least one test. It
// also fails when a mutant did not run at all, so that it cannot pass on an empty report.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const expected = process.env.BUGS ? process.env.BUGS.split(",") : ["none", ...declaredBugs()];

const reportDir = mkdtempSync(join(tmpdir(), "egide-mutants-"));
const output = join(reportDir, "report.json");
const started = Date.now();
const run = spawnSync("npx", ["vitest", "run", "--config", "mutants/vitest.config.ts", "--reporter=json", `--outputFile=${output}`], {
  cwd: join(here, ".."),
  stdio: ["ignore", "ignore", "pipe"],
  encoding: "utf8",
});
let report;
try {
  report = JSON.parse(readFileSync(output, "utf8"));
} catch (error) {
  console.error(`the mutant run wrote no report (exit ${run.status}): ${error.message}\n${run.stderr ?? ""}`);
  process.exit(1);
} finally {
  rmSync(reportDir, { recursive: true, force: true });
}

const failures = new Map(expected.map((bug) => [bug, { ran: 0, failed: [] }]));
for (const result of report.testResults.flatMap((file) => file.assertionResults)) {
  const title = result.ancestorTitles.join(" > ");
  const marker = "storage conformance: bug ";
  const at = title.indexOf(marker);
  const bug = at === -1 ? undefined : title.slice(at + marker.length).split(" ")[0];
  const entry = bug === undefined ? undefined : failures.get(bug);
  if (entry === undefined) {
    console.log(`FAIL a test outside the expected mutants ran: ${title} > ${result.title}`);
    process.exitCode = 1;
    continue;
  }
  entry.ran++;
  if (result.status !== "passed") entry.failed.push(result.title);
}
let ok = process.exitCode !== 1;
for (const [bug, { ran, failed }] of failures) {
  const caught = ran > 0 && (bug === "none" ? failed.length === 0 : failed.length > 0);
  ok &&= caught;
  const detail = ran === 0 ? "did not run" : `${failed.length} of ${ran} test(s) failing`;
  console.log(`${caught ? "ok  " : "FAIL"} ${bug}: ${detail}${bug === "none" && failed.length ? `: ${failed.join("; ")}` : ""}`);
}
const seconds = Math.round((Date.now() - started) / 1000);
console.log(
  ok
    ? `every one of ${expected.length - 1} mutants was caught, and the baseline passed (${seconds} s)`
    : "the suite missed a mutant (or failed the correct baseline)",
);
process.exit(ok ? 0 : 1);

/** The mutants `buggy-backend.ts` declares in its `BUGS` array (read from the source, so a new one is checked too). */
function declaredBugs() {
  const source = readFileSync(join(here, "buggy-backend.ts"), "utf8");
  const start = source.indexOf("export const BUGS = [");
  const end = source.indexOf("] as const", start);
  if (start === -1 || end === -1) throw new Error("buggy-backend.ts declares no BUGS array");
  const bugs = [...source.slice(start, end).matchAll(/"([A-Za-z]+)"/g)].map((match) => match[1]);
  if (bugs.length === 0) throw new Error("buggy-backend.ts declares an empty BUGS array");
  return bugs;
}
