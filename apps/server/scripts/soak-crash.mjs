// `pnpm soak:crash`: the server crash loop (issue 15, point 1) for many cycles, not in CI.
//
//   node scripts/soak-crash.mjs --storage sqlite --cycles 200
//   node scripts/soak-crash.mjs --storage postgresql --cycles 50
//
// A real server (the built dist/bin/egide-server.js, `npx tsc -b` first) as a child process, on a
// SQLite file in a temporary directory or on a fresh PostgreSQL database (`egide_t_crash_loop_*`
// on PGHOST / PGPORT / PGUSER, else 127.0.0.1:5432 as postgres; dropped at the end), initialised
// with auto-unseal from a key file. Each cycle: 16 writers of unique secrets and 6 check-and-set
// clients over 3 counters, SIGKILL after a delay drawn uniformly from 100-800 ms, SQLite's
// integrity_check while nothing runs, a restart on the same configuration and storage, and the
// checks (scripts/crash-loop/crash-verify.mjs): every acknowledged write reads back at its version
// with its value, each counter's version equals its acknowledged CAS writes (plus at most those in
// flight at the kill), every acknowledged request has its audit row. Requests in flight at the
// kill are "unknown": either outcome is fine, corruption is not. Prints one line per cycle and
// the totals; exits 1 on any loss, mismatch, unaudited request or integrity failure.
//
// Options: --storage sqlite|postgresql (default sqlite), --cycles N (default 200 on SQLite, 50 on
// PostgreSQL), --writers N (16), --cas-clients N (6), --kill-min MS (100), --kill-max MS (800),
// --final-check all|none (all: every acknowledged write of the run read back at the end),
// --json FILE (the summary with every cycle's figures).
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runCrashLoop } from "./crash-loop/crash-loop.mjs";

const { values } = parseArgs({
  options: {
    storage: { type: "string", default: "sqlite" },
    cycles: { type: "string" },
    writers: { type: "string", default: "16" },
    "cas-clients": { type: "string", default: "6" },
    "kill-min": { type: "string", default: "100" },
    "kill-max": { type: "string", default: "800" },
    "final-check": { type: "string", default: "all" },
    json: { type: "string" },
  },
});
const storage = values.storage;
if (storage !== "sqlite" && storage !== "postgresql") {
  console.error(`--storage must be sqlite or postgresql, not ${JSON.stringify(storage)}`);
  process.exit(2);
}
const cycles = Number(values.cycles ?? (storage === "sqlite" ? 200 : 50));
const ms = (value) => `${Math.round(value)} ms`;

console.log(`crash loop on ${storage}: ${cycles} cycles, node ${process.version}`);
const summary = await runCrashLoop({
  storage,
  cycles,
  writers: Number(values.writers),
  casClients: Number(values["cas-clients"]),
  killAfterMs: [Number(values["kill-min"]), Number(values["kill-max"])],
  finalCheck: values["final-check"] === "none" ? "none" : "all",
  onCycle(r) {
    const integrity = r.integrity ? `, integrity ${r.integrity.ok ? "ok" : "FAILED"} (${ms(r.integrity.ms)})` : "";
    console.log(
      `cycle ${r.cycle}/${cycles}: kill at ${ms(r.killAfterMs)}; writes ${r.acked} acked, ${r.unknown} unknown (${r.unknownApplied} applied); ` +
        `CAS ${r.casAcked} acked, ${r.casMismatches} refused, ${r.casUnknown} unknown (${r.casUnknownApplied} applied); ` +
        `restart ${ms(r.restartMs)}; checked ${r.checked}, audit rows ${r.auditRows}: lost ${r.lost}, mismatched ${r.mismatched}, unaudited ${r.unaudited}${integrity}` +
        (r.errors.length ? `; ${r.errors.length} 5xx answers` : ""),
    );
    for (const problem of r.problems.slice(0, 20)) console.log(`  ${problem}`);
    for (const error of r.errors.slice(0, 5)) console.log(`  5xx: ${error}`);
  },
});

console.log("");
console.log(`storage:                 ${summary.storage}`);
console.log(`cycles:                  ${summary.cycles}`);
console.log(
  `acknowledged writes:     ${summary.ackedWrites} (+ ${summary.unknownWrites} in flight at a kill, ${summary.unknownApplied} of them applied)`,
);
console.log(`lost:                    ${summary.lost}`);
console.log(`mismatched:              ${summary.mismatched}`);
console.log(`unaudited:               ${summary.unaudited}`);
console.log(
  `CAS acknowledged:        ${summary.casAcked} (${summary.casMismatches} refused, ${summary.casUnknown} in flight at a kill, ${summary.casUnknownApplied} of them applied)`,
);
console.log(`counters (final):        ${Object.values(summary.counters).join(", ")}`);
if (summary.integrityChecks)
  console.log(`integrity_check:         ${summary.integrityChecks - summary.integrityFailures}/${summary.integrityChecks} ok`);
console.log(`5xx answers:             ${summary.errors}`);
console.log(`restart (to unsealed):   p50 ${ms(summary.restartMsP50)}, max ${ms(summary.restartMsMax)}`);
console.log(
  `final read-back:         ${summary.finalChecked} acknowledged writes${summary.finalProblems.length ? `, ${summary.finalProblems.length} problems` : ""}`,
);
for (const problem of summary.finalProblems.slice(0, 20)) console.log(`  ${problem}`);
console.log(`duration:                ${(summary.durationMs / 1000).toFixed(1)} s`);
console.log(summary.ok ? "OK: nothing lost, nothing mismatched, everything audited" : "FAILED");
if (values.json) writeFileSync(values.json, `${JSON.stringify(summary, null, 2)}\n`);
process.exitCode = summary.ok ? 0 : 1;
