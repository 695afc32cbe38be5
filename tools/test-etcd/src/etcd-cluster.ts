import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { etcdBinary } from "./etcd-binary.js";
import { EtcdMember, type EtcdServerTls } from "./etcd-member.js";
import { freeLoopbackPort } from "@egide/test-network";

/** Options of {@link startEtcd} and {@link startEtcdCluster}. */
export interface EtcdClusterOptions {
  /** Serve clients over TLS with this certificate (see `createTestCertificates`). */
  tls?: EtcdServerTls;
  /** `--quota-backend-bytes` of every member (default 512 MiB). */
  quotaBackendBytes?: number;
  /** Further flags for every member. */
  extraArgs?: readonly string[];
  /** How long to wait for every member to be healthy (default 20 s). */
  readyTimeoutMs?: number;
}

/** A throwaway etcd cluster on loopback ports, its data in a temporary directory. */
export class EtcdCluster {
  /** The members, in the order of `--initial-cluster`. */
  readonly members: readonly EtcdMember[];
  /** The temporary directory holding every member's data directory. */
  readonly dir: string;
  #closing: Promise<void> | undefined;

  constructor(members: readonly EtcdMember[], dir: string) {
    this.members = members;
    this.dir = dir;
  }

  /** Every member's client URL: the `endpoints` of a client. */
  get endpoints(): string[] {
    return this.members.map((member) => member.clientUrl);
  }

  /** Waits until every running member is healthy. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    await Promise.all(this.members.filter((member) => member.running).map((member) => member.waitHealthy(timeoutMs)));
  }

  /** The current leader, as the running members see it (waits up to `timeoutMs` for one). */
  async leader(timeoutMs = 10_000): Promise<EtcdMember> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const statuses = await Promise.all(
        this.members
          .filter((member) => member.running)
          .map(async (member) => ({ member, status: await member.status().catch(() => undefined) })),
      );
      for (const { member, status } of statuses) {
        if (status && status.leaderId !== "0" && status.leaderId === status.memberId) return member;
      }
      if (Date.now() > deadline) throw new Error(`no etcd leader within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The running members other than the leader. */
  async followers(): Promise<EtcdMember[]> {
    const leader = await this.leader();
    return this.members.filter((member) => member !== leader && member.running);
  }

  /** Kills every member and deletes the data. Idempotent: every call waits for the one close. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await Promise.all(this.members.map((member) => member.kill()));
      } finally {
        rmSync(this.dir, { recursive: true, force: true });
      }
    })();
    return this.#closing;
  }
}

/**
 * Starts a one-member etcd on free loopback ports (data in a temporary directory) and waits
 * until it serves. Close it with `cluster.close()` in `afterAll`.
 *
 * ```ts
 * const etcd = await startEtcd();
 * const backend = await EtcdBackend.open({ endpoints: etcd.endpoints, prefix: "t1/" });
 * ```
 */
export function startEtcd(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  return startEtcdCluster(1, options);
}

/** Starts a cluster of `size` members on free loopback ports and waits until all are healthy. */
export async function startEtcdCluster(size: number, options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  if (!Number.isInteger(size) || size < 1) throw new Error("startEtcdCluster: size must be a positive whole number");
  etcdBinary();
  const dir = mkdtempSync(join(tmpdir(), "egide-etcd-"));
  const token = `egide-${randomBytes(6).toString("hex")}`;
  const ports: { client: number; peer: number }[] = [];
  const taken = new Set<number>();
  while (ports.length < size) {
    const client = await freeLoopbackPort();
    const peer = await freeLoopbackPort();
    if (client === peer || taken.has(client) || taken.has(peer)) continue;
    taken.add(client);
    taken.add(peer);
    ports.push({ client, peer });
  }
  const initialCluster = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(",");
  const members = ports.map(
    (p, i) =>
      new EtcdMember({
        name: `m${i}`,
        clientPort: p.client,
        peerPort: p.peer,
        dataDir: join(dir, `m${i}`),
        initialCluster,
        clusterToken: token,
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.quotaBackendBytes !== undefined ? { quotaBackendBytes: options.quotaBackendBytes } : {}),
        ...(options.extraArgs ? { extraArgs: options.extraArgs } : {}),
      }),
  );
  const cluster = new EtcdCluster(members, dir);
  try {
    for (const member of members) member.start();
    await cluster.waitHealthy(options.readyTimeoutMs ?? 20_000);
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}
