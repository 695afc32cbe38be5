import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { SealManager, barrier } from "@egide/crypto-envelope";
import { openStorageAdapter } from "@egide/storage-core";
import { withMetrics } from "@egide/storage-metrics";
import type { FastifyInstance } from "fastify";
import { Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { TokenStore } from "./auth/token-store.js";
import { cacheMetrics } from "./cache/cache-metrics.js";
import { StorageCache } from "./cache/storage-cache.js";
import type { ServerConfig } from "./config/server-config.js";
import { EgideContext } from "./egide-context.js";
import { HealthProbe } from "./health/health-probe.js";
import { activeHostGauge, activeHostReader } from "./health/storage-active-host.js";
import { SHIPPED_STORAGE_PACKAGES } from "./config/shipped-storage-packages.js";
import { buildApp } from "./http/build-app.js";
import { MountTable } from "./mounts/mount-table.js";
import { PolicyStore } from "./policy/policy-store.js";
import { registerTokenRoutes } from "./routes/auth-token-routes.js";
import { registerAuthMethods } from "./routes/auth-method-routes.js";
import { registerLogicalRoutes } from "./routes/logical-routes.js";
import { registerAuditLogRoute } from "./routes/sys-audit-log-route.js";
import { registerHealthRoute } from "./routes/sys-health-route.js";
import { registerKeyRoutes } from "./routes/sys-key-routes.js";
import { registerMetricsRoute } from "./routes/sys-metrics-route.js";
import { registerMountRoutes } from "./routes/sys-mounts-routes.js";
import { registerPolicyRoutes } from "./routes/sys-policy-routes.js";
import { registerStorageBackupRoute } from "./routes/sys-storage-backup-route.js";
import { registerStorageRestoreRoute } from "./routes/sys-storage-restore-route.js";
import { registerSealRoutes } from "./routes/sys-seal-routes.js";
import { registerCapabilitiesRoutes } from "./routes/sys-capabilities-routes.js";
import { registerWrappingRoutes } from "./routes/sys-wrapping-routes.js";
import { initializeInstallation } from "./seal/initialize-installation.js";
import type { SealRouteOptions } from "./routes/sys-seal-routes.js";

/** Options of {@link startServer}. */
export interface StartServerOptions {
  config: ServerConfig;
  /** Environment for the adapter's options (`password_env`, …). Default: `process.env`. */
  env?: Record<string, string | undefined>;
  /** Where storage adapters are resolved from. Default: this package's location (its node_modules, walking up). */
  resolveFrom?: string;
}

/** A running server. */
export interface RunningServer {
  /** The base URL (`http://127.0.0.1:8200`). */
  url: string;
  /** The bound port (useful with port 0). */
  port: number;
  app: FastifyInstance;
  context: EgideContext;
  /**
   * Initialises the installation in-process (dev mode and tests): returns the shares and the
   * root token. It stays unsealed afterwards when `unseal` is true.
   */
  initialize(scheme: { shares: number; threshold: number }, unseal?: boolean): Promise<{ keys: Buffer[]; rootToken: string }>;
  /** Stops accepting connections, finishes in-flight requests, seals, and closes the storage. */
  close(): Promise<void>;
}

/**
 * Starts Egide: loads the storage adapter named by `[storage] type`, stacks metrics, the
 * coherent cache and the encrypting barrier on it (adapter → metrics → cache → barrier: every
 * read and write of the server goes through the barrier, the cache holds only ciphertext, and
 * the storage metrics count only what reaches the database), auto-unseals when configured, and
 * listens.
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { config } = options;
  const raw = await openStorageAdapter(config.storage, {
    packages: SHIPPED_STORAGE_PACKAGES,
    resolveFrom: options.resolveFrom ?? dirname(fileURLToPath(import.meta.url)),
    ...(options.env ? { env: options.env } : {}),
  });
  try {
    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics, prefix: "egide_process_" });
    const metered = withMetrics(raw, { registry: metrics });
    const seal = await SealManager.open(
      metered,
      config.seal.rotateAfterEncryptions ? { rotateAfterEncryptions: config.seal.rotateAfterEncryptions } : {},
    );
    const cacheObserver = cacheMetrics(metrics);
    const cache = new StorageCache(metered, {
      maxBytes: config.cache.maxBytes,
      disabled: config.cache.disabled,
      observer: cacheObserver.observer,
    });
    cacheObserver.watch(cache);
    const storage = barrier(cache.storage, seal);
    new Gauge({
      name: "egide_seal_sealed",
      help: "1 while the server is sealed, 0 when unsealed.",
      registers: [metrics],
      collect() {
        this.set(seal.sealed ? 1 : 0);
      },
    });
    const tokens = new TokenStore(storage);
    const policies = new PolicyStore(storage, { coherence: cache });
    const mounts = new MountTable(storage, { coherence: cache });
    // The context's adapter is the metered one: its audit store and health probe are recorded
    // in the storage metrics like every other storage operation.
    const context = new EgideContext({ storage, adapter: metered, seal, metrics, tokens, policies, coherence: cache });
    if (seal.initialized && config.seal.autoUnseal) {
      await seal.autoUnseal(config.seal.autoUnseal);
      void seal.rewrapInBackground();
    }

    // --- storage active host (issue 15, failover): from the adapter itself, which the decorators do not forward.
    const activeHost = activeHostReader(raw);
    if (activeHost) activeHostGauge(metrics, activeHost);
    const probe = new HealthProbe(metered, { ...config.health, activeHost });
    // --- end storage active host
    await probe.start();
    const app = buildApp(context, {
      listener: config.listener,
      logLevel: config.logLevel,
      auditHealthChecks: config.audit.healthChecks,
      maxWrapTtlMs: config.tokens.maxTtlMs,
    });
    probe.onUnhealthy = (health) => app.log.warn({ storage: health.type, detail: health.detail }, "storage health check failed");
    const sealOptions: SealRouteOptions = { tokens, mounts, autoUnseal: config.seal.autoUnseal, startedAt: new Date() };
    registerSealRoutes(app, context, sealOptions);
    registerHealthRoute(app, context, probe, () => cache.status());
    registerKeyRoutes(app, context);
    registerCapabilitiesRoutes(app, context);
    registerWrappingRoutes(app, context, { tokens, maxTtlMs: config.tokens.maxTtlMs });
    registerMetricsRoute(app, context, { unauthenticated: config.telemetry.unauthenticatedMetricsAccess });
    registerAuditLogRoute(app, context);
    registerStorageBackupRoute(app, context);
    registerStorageRestoreRoute(app, context);
    registerTokenRoutes(app, context, { tokens, defaultTtlMs: config.tokens.defaultTtlMs, maxTtlMs: config.tokens.maxTtlMs });
    registerAuthMethods(app, context, { tokens, defaultTtlMs: config.tokens.defaultTtlMs, maxTtlMs: config.tokens.maxTtlMs });
    registerPolicyRoutes(app, context, policies);
    registerMountRoutes(app, context, mounts);
    registerLogicalRoutes(app, context, mounts);

    await app.listen({ host: config.listener.host, port: config.listener.port });
    const address = app.server.address();
    const port = typeof address === "object" && address !== null ? address.port : config.listener.port;
    const host = config.listener.host.includes(":") ? `[${config.listener.host}]` : config.listener.host;
    let closing: Promise<void> | undefined;
    return {
      url: `${config.listener.tls ? "https" : "http"}://${host}:${port}`,
      port,
      app,
      context,
      async initialize(scheme, unseal = false) {
        const { keys, rootToken } = await initializeInstallation(context, sealOptions, undefined, scheme, { unseal });
        return { keys, rootToken };
      },
      close() {
        closing ??= (async () => {
          probe.stop();
          await app.close();
          seal.seal();
          await storage.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await raw.close().catch(() => undefined);
    throw error;
  }
}
