// The server crash loop (issue 15, point 1), shared by `scripts/soak-crash.mjs` (`pnpm soak:crash`,
// hundreds of cycles) and `test/e2e-crash-loop.test.ts` (the short version in the suite). Plain
// ESM so that the script runs without a build step of its own; `crash-loop.d.mts` gives the test
// its types. It drives the built server (`dist/bin/egide-server.js`) as a child process.
import { randomBytes } from "node:crypto";
import { runCycleLoad } from "./crash-load.mjs";
import { keyFileIsPrivate, prepareCrashStorage } from "./crash-storage.mjs";
import { verifyCycle } from "./crash-verify.mjs";
import { startServerChild, waitForHealth } from "./server-child.mjs";
import { vaultRequest } from "./vault-request.mjs";

/**
 * Runs the crash loop: a server on `storage`, initialised with auto-unseal from a key file;
 * then, `cycles` times: the load (`writers` unique-secret writers and `casClients` check-and-set
 * clients over `counters` counters), SIGKILL after a delay drawn uniformly from `killAfterMs`,
 * SQLite's `PRAGMA integrity_check` on the file while nothing runs, a restart on the same
 * configuration and storage (timed until `GET /v1/sys/health` answers 200: unsealed by itself),
 * and the checks of {@link verifyCycle}, with a sample of `earlierSample` writes of previous
 * cycles. At the end every acknowledged write of the run is read back once more
 * (`finalCheck: "all"`), the server is stopped and the storage removed.
 *
 * @param {import("./crash-loop.d.mts").CrashLoopOptions} options
 * @returns {Promise<import("./crash-loop.d.mts").CrashLoopSummary>}
 */
export async function runCrashLoop(options) {
  const writers = options.writers ?? 16;
  const casClients = options.casClients ?? 6;
  const [killMin, killMax] = options.killAfterMs ?? [100, 800];
  const earlierSample = options.earlierSample ?? 64;
  const started = performance.now();
  const storage = await prepareCrashStorage(options.storage);
  const prefix = `crash/${randomBytes(4).toString("hex")}`;
  const counterPaths = Array.from({ length: options.counters ?? 3 }, (_, i) => `${prefix}/counter/${i}`);
  const counters = new Map(counterPaths.map((path) => [path, 0]));
  /** @type {import("./crash-loop.d.mts").CycleResult[]} */
  const results = [];
  const allAcked = [];
  let auditCursor = 0;
  let server;
  let finalVerdict = null;
  try {
    server = await startServerChild(storage.configPath);
    await waitForHealth(server.url, 501);
    const init = await vaultRequest(server.url, "PUT", "/v1/sys/init", { body: {} });
    if (init.status !== 200) throw new Error(`PUT /v1/sys/init: ${init.status} ${JSON.stringify(init.body)}`);
    const token = init.body.root_token;
    if (!keyFileIsPrivate(storage.keyFile)) throw new Error(`${storage.keyFile} is not mode 0600`);
    await waitForHealth(server.url, 200);

    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      let release = () => undefined;
      const stop = new Promise((resolve) => {
        release = resolve;
      });
      const running = runCycleLoad({ url: server.url, token, prefix, cycle, writers, counters: counterPaths, casClients, stop });
      const killAfterMs = killMin + Math.random() * (killMax - killMin);
      await new Promise((resolve) => setTimeout(resolve, killAfterMs));
      await server.kill("SIGKILL");
      release();
      const load = await running;

      const integrity = storage.integrityCheck();
      const restartStarted = performance.now();
      server = await startServerChild(storage.configPath);
      await waitForHealth(server.url, 200);
      const restartMs = performance.now() - restartStarted;

      const verifyStarted = performance.now();
      const earlier = sample(allAcked, earlierSample);
      const verdict = await verifyCycle({ url: server.url, token, prefix, load, earlier, counters, auditCursor });
      auditCursor = verdict.auditCursor;
      allAcked.push(...load.acked);
      const problems = [...load.violations.map((v) => `during the load: ${v}`), ...verdict.problems];
      if (integrity && !integrity.ok) problems.push(`integrity_check: ${integrity.detail}`);
      /** @type {import("./crash-loop.d.mts").CycleResult} */
      const result = {
        cycle,
        killAfterMs,
        acked: load.acked.length,
        unknown: load.unknown.length,
        unknownApplied: verdict.unknownApplied,
        casAcked: load.casAcked.length,
        casMismatches: load.casMismatches,
        casUnknown: [...load.casUnknownBy.values()].reduce((a, b) => a + b, 0),
        casUnknownApplied: verdict.casUnknownApplied,
        checked: verdict.checked,
        lost: verdict.lost,
        mismatched: verdict.mismatched + load.violations.length,
        unaudited: verdict.unaudited,
        auditRows: verdict.auditRows,
        errors: load.errors,
        integrity,
        restartMs,
        verifyMs: performance.now() - verifyStarted,
        problems,
      };
      results.push(result);
      options.onCycle?.(result);
    }

    if ((options.finalCheck ?? "all") === "all") {
      const empty = {
        acked: [],
        unknown: [],
        casAcked: [],
        casAckedBy: new Map(),
        casUnknownBy: new Map(),
        casMismatches: 0,
        requestIds: [],
        refusals: new Map(),
        violations: [],
        errors: [],
      };
      finalVerdict = await verifyCycle({ url: server.url, token, prefix, load: empty, earlier: allAcked, counters, auditCursor });
    }
    await server.kill("SIGTERM");
  } finally {
    await server?.kill("SIGKILL");
    await storage.cleanup();
  }
  return summarize(options.storage, results, finalVerdict, counters, performance.now() - started);
}

function summarize(storage, results, finalVerdict, counters, durationMs) {
  const sum = (field) => results.reduce((total, result) => total + result[field], 0);
  const restarts = results.map((result) => result.restartMs).sort((a, b) => a - b);
  const integrityFailures = results.filter((result) => result.integrity && !result.integrity.ok).length;
  const summary = {
    storage,
    cycles: results.length,
    ackedWrites: sum("acked"),
    unknownWrites: sum("unknown"),
    unknownApplied: sum("unknownApplied"),
    casAcked: sum("casAcked"),
    casMismatches: sum("casMismatches"),
    casUnknown: sum("casUnknown"),
    casUnknownApplied: sum("casUnknownApplied"),
    counters: Object.fromEntries(counters),
    lost: sum("lost") + (finalVerdict?.lost ?? 0),
    mismatched: sum("mismatched") + (finalVerdict?.mismatched ?? 0),
    unaudited: sum("unaudited") + (finalVerdict?.unaudited ?? 0),
    integrityChecks: results.filter((result) => result.integrity).length,
    integrityFailures,
    errors: results.reduce((total, result) => total + result.errors.length, 0),
    restartMsP50: restarts.length ? restarts[Math.floor((restarts.length - 1) / 2)] : 0,
    restartMsMax: restarts.length ? restarts[restarts.length - 1] : 0,
    finalChecked: finalVerdict?.checked ?? 0,
    finalProblems: finalVerdict?.problems ?? [],
    durationMs,
  };
  return { ...summary, ok: summary.lost === 0 && summary.mismatched === 0 && summary.unaudited === 0 && integrityFailures === 0, results };
}

/** Up to `count` distinct elements of `items`, drawn at random. */
function sample(items, count) {
  if (items.length <= count) return [...items];
  const picked = new Set();
  while (picked.size < count) picked.add(Math.floor(Math.random() * items.length));
  return [...picked].map((i) => items[i]);
}
