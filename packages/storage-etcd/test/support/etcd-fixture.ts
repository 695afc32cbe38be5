import { randomBytes } from "node:crypto";
import { type EtcdCluster, startEtcd } from "@egide/test-etcd";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll } from "vitest";
import { EtcdBackend, type EtcdBackendInternals, type EtcdOptions } from "../../src/index.js";

/** A unique key namespace, so every backend a test opens starts empty. */
export function freshPrefix(label = "t"): string {
  return `${label}-${randomBytes(5).toString("hex")}/`;
}

/** Timeouts short enough for tests that wait for them, long enough for a loaded CI machine. */
export const TEST_TIMEOUTS = { dialTimeoutMs: 2000, requestTimeoutMs: 6000 };

/**
 * Starts a one-member etcd for the test file (in `beforeAll`, stopped in `afterAll`) and hands
 * out backends on fresh prefixes, deleting each prefix's keys when its backend is destroyed.
 */
export function useEtcd(): {
  cluster: () => EtcdCluster;
  open: (options?: Partial<EtcdOptions>, internals?: EtcdBackendInternals) => Promise<EtcdBackend>;
  destroy: (backend: { close(): Promise<void> }) => Promise<void>;
  raw: () => Etcd3;
} {
  let cluster: EtcdCluster | undefined;
  let raw: Etcd3 | undefined;
  const prefixes = new Map<object, string>();
  beforeAll(async () => {
    cluster = await startEtcd();
    raw = new Etcd3({ hosts: cluster.endpoints });
  }, 60_000);
  afterAll(async () => {
    raw?.close();
    await cluster?.close();
  }, 60_000);
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("etcd is not started (useEtcd's beforeAll did not run)");
    return value;
  };
  return {
    cluster: () => need(cluster),
    raw: () => need(raw),
    async open(options = {}, internals = {}) {
      const prefix = options.prefix ?? freshPrefix();
      const backend = await EtcdBackend.open({ endpoints: need(cluster).endpoints, ...TEST_TIMEOUTS, ...options, prefix }, internals);
      prefixes.set(backend, prefix);
      return backend;
    },
    async destroy(backend) {
      await backend.close();
      const prefix = prefixes.get(backend);
      prefixes.delete(backend);
      if (prefix !== undefined) await need(raw).delete().prefix(prefix);
    },
  };
}
