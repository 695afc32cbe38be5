import type { UnsealKeySource } from "@egide/crypto-envelope";

/** Where and how the server listens (`[listener]`). */
export interface ListenerConfig {
  /** Host to bind ("127.0.0.1", "::1", "0.0.0.0"). */
  host: string;
  /** TCP port (0 picks a free one). */
  port: number;
  /** Certificate and key files; absent when `tls_disable = true`. */
  tls?: { certFile: string; keyFile: string };
  /** The largest request body in bytes (`max_request_size`, as in Vault). */
  maxRequestBytes: number;
  /** How long a client may take to send a request head (`http_read_header_timeout`, default 10 s). */
  headerTimeoutMs: number;
  /** How long a client may take to send a whole request, body included (`max_request_duration`, default 90 s). */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open (`http_idle_timeout`, default 30 s). */
  idleTimeoutMs: number;
  /** The most connections open at once; more are closed as they arrive (`max_connections`, default 2048). */
  maxConnections: number;
}

/** The server's configuration, from the TOML file (see `parseServerConfig`). */
export interface ServerConfig {
  storage: {
    /** `[storage] type`: the adapter to load ("sqlite", "postgresql", …). */
    type: string;
    /** `[storage] package`: the npm package providing `type`, when its name follows no convention. */
    package?: string;
    /** The adapter's own table (`[storage.<type>]`), validated by the adapter. */
    options: unknown;
  };
  listener: ListenerConfig;
  seal: {
    /** Auto-unseal from a key file or an environment variable (`[seal] unseal_key_file` / `unseal_key_env`). */
    autoUnseal?: UnsealKeySource;
    /** Encryptions after which a key version rotates by itself (`[seal] rotate_after_encryptions`). */
    rotateAfterEncryptions?: number;
  };
  telemetry: {
    /** Whether /v1/sys/metrics answers without a token (Vault's `unauthenticated_metrics_access`). */
    unauthenticatedMetricsAccess: boolean;
  };
  audit: {
    /** Whether /v1/sys/health and /v1/sys/seal-status requests are audited too (default true). */
    healthChecks: boolean;
  };
  /**
   * The coherent storage cache (`[cache]`): its byte budget (`size`, default 64 MiB) and
   * `disable = true` for deployments that want every read from storage.
   */
  cache: { maxBytes: number; disabled: boolean };
  /** Default and largest token TTL in milliseconds (`default_lease_ttl`, `max_lease_ttl`). */
  tokens: { defaultTtlMs: number; maxTtlMs: number };
  /** How often the storage health probe runs, and how long it may take (`[storage] health_interval`, `health_timeout`). */
  health: { intervalMs: number; timeoutMs: number };
  /** Log level of the server's own logs (`log_level`). */
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
}
