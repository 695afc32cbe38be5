/** Options of {@link runCrashLoop}. */
export interface CrashLoopOptions {
  storage: "sqlite" | "postgresql";
  /** Kill-restart-verify cycles. */
  cycles: number;
  /** Clients writing unique secrets (default 16). */
  writers?: number;
  /** Check-and-set counters (default 3). */
  counters?: number;
  /** Clients doing read-modify-write with `options.cas` on the counters (default 6, spread over them). */
  casClients?: number;
  /** SIGKILL this long after the load starts, drawn uniformly (default [100, 800] ms). */
  killAfterMs?: [number, number];
  /** Writes of previous cycles read back again after each restart (default 64). */
  earlierSample?: number;
  /** Read back every acknowledged write of the run once more at the end (default "all"). */
  finalCheck?: "all" | "none";
  /** Called after each cycle's checks. */
  onCycle?: (result: CycleResult) => void;
}

/** One cycle: the load up to the kill, the restart, and what the checks found. */
export interface CycleResult {
  cycle: number;
  killAfterMs: number;
  /** Unique-secret writes answered 200. */
  acked: number;
  /** Writes in flight at the kill (or answered 5xx): applied or not. */
  unknown: number;
  unknownApplied: number;
  casAcked: number;
  casMismatches: number;
  casUnknown: number;
  casUnknownApplied: number;
  /** Acknowledged writes read back (this cycle's, a sample of earlier ones, kept CAS versions). */
  checked: number;
  lost: number;
  mismatched: number;
  unaudited: number;
  auditRows: number;
  /** 5xx answers during the load. */
  errors: string[];
  /** SQLite only: `PRAGMA integrity_check` on the file between the kill and the restart. */
  integrity: { ok: boolean; detail: string; ms: number } | null;
  /** From spawning the server to `GET /v1/sys/health` answering 200 (unsealed from the key file). */
  restartMs: number;
  verifyMs: number;
  problems: string[];
}

/** The whole run. */
export interface CrashLoopSummary {
  storage: "sqlite" | "postgresql";
  cycles: number;
  ackedWrites: number;
  unknownWrites: number;
  unknownApplied: number;
  casAcked: number;
  casMismatches: number;
  casUnknown: number;
  casUnknownApplied: number;
  /** Each counter's final version (= its count = the CAS writes applied). */
  counters: Record<string, number>;
  lost: number;
  mismatched: number;
  unaudited: number;
  integrityChecks: number;
  integrityFailures: number;
  errors: number;
  restartMsP50: number;
  restartMsMax: number;
  /** Acknowledged writes read back by the final check. */
  finalChecked: number;
  finalProblems: string[];
  durationMs: number;
  /** No loss, no mismatch, nothing unaudited, integrity ok. */
  ok: boolean;
  results: CycleResult[];
}

/** Runs the crash loop (see crash-loop.mjs). */
export function runCrashLoop(options: CrashLoopOptions): Promise<CrashLoopSummary>;
