import type { StorageBackend } from "@egide/storage-core";
import type { ActiveHostReader } from "./storage-active-host.js";

/** The specification's `storage` object of `/v1/sys/health`. */
export interface StorageHealth {
  type: string;
  status: "healthy" | "unhealthy";
  latency_ms: number;
  /**
   * Why it is unhealthy, in words safe to show anyone: health answers without a token, so this
   * never carries a driver's message (host names, database names, users).
   */
  error?: string;
  /**
   * With several storage hosts (PostgreSQL `hosts`): the position, from 1, in that list of the
   * one in use; absent while none is known (during a failover). Only a number: health answers
   * without a token, so it never names a host.
   */
  active_host?: number;
}

/** What the probe found, with the driver's own message for the server log. */
export interface ProbedHealth extends StorageHealth {
  /** The backend's or driver's message, for the log only. */
  detail?: string;
}

const PROBE_FAILED = "the storage health check failed (details in the server log)";

/**
 * Probes the storage in the background and keeps the last result, so `/v1/sys/health`
 * answers from memory and never waits on a slow or unreachable database. Each probe is
 * time-boxed; a result older than three intervals (the probe itself is stuck) reads as
 * unhealthy.
 */
export class HealthProbe {
  readonly #backend: StorageBackend;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #activeHost: ActiveHostReader | undefined;
  #last: ProbedHealth;
  /** Called with each unhealthy result that follows a healthy one (or the first one). */
  onUnhealthy: ((health: ProbedHealth) => void) | undefined;
  #checkedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  /**
   * @param options.activeHost the adapter's active host (see `activeHostReader`), read at each
   *   answer: shown as `active_host` when the adapter lists several hosts
   */
  constructor(backend: StorageBackend, options: { intervalMs: number; timeoutMs: number; activeHost?: ActiveHostReader | undefined }) {
    this.#backend = backend;
    this.#intervalMs = options.intervalMs;
    this.#timeoutMs = options.timeoutMs;
    this.#activeHost = options.activeHost;
    this.#last = { type: backend.type, status: "unhealthy", latency_ms: 0, error: "not probed yet" };
  }

  /** Runs a first probe, then one every interval. */
  async start(): Promise<void> {
    await this.probe();
    this.#timer = setInterval(() => void this.probe(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The latest result, safe to answer without a token (no driver message, no host name). */
  current(): StorageHealth {
    if (this.#checkedAt > 0 && Date.now() - this.#checkedAt > 3 * this.#intervalMs + this.#timeoutMs) {
      return {
        type: this.#backend.type,
        status: "unhealthy",
        latency_ms: this.#last.latency_ms,
        error: "the storage probe has not answered recently",
        ...this.#hostPosition(),
      };
    }
    const { detail: _detail, ...shown } = this.#last;
    return { ...shown, ...this.#hostPosition() };
  }

  /** `active_host` (from 1) when the adapter lists several hosts and knows which it uses. */
  #hostPosition(): { active_host?: number } {
    const active = this.#activeHost?.();
    return active && active.hostCount > 1 ? { active_host: active.index + 1 } : {};
  }

  /** One probe now (single-flight). */
  probe(): Promise<void> {
    this.#running ??= this.#probeOnce().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #probeOnce(): Promise<void> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<StorageHealth>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            type: this.#backend.type,
            status: "unhealthy",
            latency_ms: this.#timeoutMs,
            error: `no answer within ${this.#timeoutMs} ms`,
          }),
        this.#timeoutMs,
      );
    });
    const probe = this.#backend.health().then(
      (result): ProbedHealth => ({
        type: this.#backend.type,
        status: result.status,
        latency_ms: Math.round(result.latencyMs * 1000) / 1000,
        ...(result.error ? { error: PROBE_FAILED, detail: result.error } : {}),
      }),
      (error: unknown): ProbedHealth => ({
        type: this.#backend.type,
        status: "unhealthy",
        latency_ms: performance.now() - started,
        error: PROBE_FAILED,
        detail: String((error as Error)?.message ?? error),
      }),
    );
    const previous = this.#last;
    this.#last = await Promise.race([probe, timeout]);
    if (this.#last.status === "unhealthy" && (previous.status === "healthy" || this.#checkedAt === 0)) this.onUnhealthy?.(this.#last);
    clearTimeout(timer);
    this.#checkedAt = Date.now();
  }
}
