import { Gauge, type Registry } from "prom-client";

/**
 * The server a storage adapter with several hosts uses now (PostgreSQL's `activeHost()`): its
 * host, port, and position in the configured list (`index`, from 0, of `hostCount`).
 */
export interface StorageActiveHost {
  host: string;
  port: number;
  index: number;
  hostCount: number;
}

/** Reads the adapter's active host; undefined while it knows none (during a failover). */
export type ActiveHostReader = () => StorageActiveHost | undefined;

/**
 * The adapter's `activeHost()` as a reader, when it has one. It is read from the adapter itself
 * (not a decorator: metrics and the cache forward only the storage contract), and never throws.
 */
export function activeHostReader(adapter: unknown): ActiveHostReader | undefined {
  const holder = adapter as { activeHost?: unknown } | null;
  if (typeof holder?.activeHost !== "function") return undefined;
  const read = holder.activeHost as () => unknown;
  return () => {
    try {
      const value = read.call(adapter) as Partial<StorageActiveHost> | undefined;
      if (!value || typeof value.host !== "string" || typeof value.port !== "number" || typeof value.index !== "number") return undefined;
      return { host: value.host, port: value.port, index: value.index, hostCount: value.hostCount ?? 1 };
    } catch {
      return undefined;
    }
  };
}

/**
 * `egide_storage_active_host{host="db2:5432"} 1`, an info-style gauge: one series, for the host
 * the storage uses now, and none while it knows none. Metrics need a token (unless configured
 * otherwise), so naming the host is fine here; `/v1/sys/health` shows only its position.
 */
export function activeHostGauge(registry: Registry, read: ActiveHostReader): Gauge<"host"> {
  return new Gauge({
    name: "egide_storage_active_host",
    help: "1 for the storage server (host:port) in use now; no series while none is known (failover).",
    labelNames: ["host"],
    registers: [registry],
    collect() {
      this.reset();
      const active = read();
      if (active) this.set({ host: `${active.host.includes(":") ? `[${active.host}]` : active.host}:${active.port}` }, 1);
    },
  });
}
