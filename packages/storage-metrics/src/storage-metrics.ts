import { Counter, Gauge, Histogram, register as defaultRegistry } from "prom-client";
import type { Registry } from "prom-client";

/** The metric names of the specification's Monitoring section. */
export const StorageMetricName = {
  OPERATIONS: "egide_storage_operations_total",
  DURATION: "egide_storage_operation_duration_seconds",
  ERRORS: "egide_storage_errors_total",
  CONNECTIONS: "egide_storage_connections_active",
} as const;

/**
 * Latency buckets in seconds: from 100 µs (an in-process SQLite read) to 10 s (a statement
 * timeout), dense where local and networked storage operations fall.
 */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Something that reports a backend's active connections when the gauge is scraped. */
export interface ConnectionSource {
  backend: string;
  active(): number | undefined;
}

/** The four storage metrics of one registry, shared by every backend recorded into it. */
export interface StorageMetrics {
  operations: Counter<"backend" | "operation">;
  duration: Histogram<"backend" | "operation">;
  errors: Counter<"backend" | "operation" | "code">;
  connections: Gauge<"backend">;
  /** Backends whose connections the gauge reports at each scrape. */
  connectionSources: Set<ConnectionSource>;
}

const byRegistry = new WeakMap<Registry, StorageMetrics>();

/**
 * The storage metrics registered in `registry` (prom-client's default registry when omitted),
 * created on first use. Several decorated backends share them, told apart by the `backend`
 * label; registering the same names twice would throw in prom-client.
 */
export function storageMetrics(
  registry: Registry = defaultRegistry,
  buckets: readonly number[] = DEFAULT_DURATION_BUCKETS,
): StorageMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const connectionSources = new Set<ConnectionSource>();
  const metrics: StorageMetrics = {
    operations: new Counter({
      name: StorageMetricName.OPERATIONS,
      help: "Total storage operations, by backend type and operation.",
      labelNames: ["backend", "operation"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: StorageMetricName.DURATION,
      help: "Storage operation latency in seconds, by backend type and operation.",
      labelNames: ["backend", "operation"],
      buckets: [...buckets],
      registers: [registry],
    }),
    errors: new Counter({
      name: StorageMetricName.ERRORS,
      help: "Failed storage operations, by backend type, operation and error code.",
      labelNames: ["backend", "operation", "code"],
      registers: [registry],
    }),
    connections: new Gauge({
      name: StorageMetricName.CONNECTIONS,
      help: "Database connections in use (checked out of the pool), by backend type.",
      labelNames: ["backend"],
      registers: [registry],
      // Read at scrape time from the backends themselves, so the gauge is never stale.
      collect() {
        const totals = new Map<string, number>();
        for (const source of connectionSources) {
          const active = source.active();
          if (active !== undefined) totals.set(source.backend, (totals.get(source.backend) ?? 0) + active);
        }
        this.reset();
        for (const [backend, active] of totals) this.set({ backend }, active);
      },
    }),
    connectionSources,
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
