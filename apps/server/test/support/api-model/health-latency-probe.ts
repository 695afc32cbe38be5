import { request } from "node:http";

/** What {@link startHealthLatencyProbe} measured. */
export interface HealthLatencyReport {
  /** Latencies in milliseconds, in the order the polls were answered. */
  latenciesMs: number[];
  /** Polls that failed (no answer, or an error), with why. */
  failures: string[];
  /** Statuses answered, by count. */
  statuses: Record<number, number>;
}

/** Latency percentiles of a report, in milliseconds. */
export function latencySummary(latencies: number[]): { count: number; p50: number; p90: number; p99: number; max: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { count: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.at(-1) ?? Number.NaN };
}

/**
 * Polls `GET <url>/v1/sys/health` every `intervalMs` (a new connection each time, so a poll
 * never waits behind another request on a shared socket) and records each one's latency until
 * `stop()` is called, which waits for the polls in flight.
 */
export function startHealthLatencyProbe(url: string, intervalMs = 50): { stop(): Promise<HealthLatencyReport> } {
  const report: HealthLatencyReport = { latenciesMs: [], failures: [], statuses: {} };
  const inFlight = new Set<Promise<void>>();
  const poll = () => {
    const started = performance.now();
    const done = new Promise<void>((resolve) => {
      const req = request(`${url}/v1/sys/health`, { agent: false, timeout: 5000 }, (response) => {
        response.resume();
        response.on("end", () => {
          report.latenciesMs.push(performance.now() - started);
          const status = response.statusCode ?? 0;
          report.statuses[status] = (report.statuses[status] ?? 0) + 1;
          resolve();
        });
      });
      req.on("timeout", () => req.destroy(new Error("no answer within 5 s")));
      req.on("error", (error) => {
        report.failures.push(error.message);
        resolve();
      });
      req.end();
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };
  const timer = setInterval(poll, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      return report;
    },
  };
}
