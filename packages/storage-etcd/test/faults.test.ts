import { type EtcdCluster, TcpProxy, startEtcdCluster } from "@egide/test-etcd";
import { StorageError } from "@egide/storage-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdBackend } from "../src/index.js";
import { freshPrefix } from "./support/etcd-fixture.js";

// One three-member cluster for the file; each test leaves every member running again.
let cluster: EtcdCluster;

beforeAll(async () => {
  cluster = await startEtcdCluster(3);
}, 60_000);

afterAll(() => cluster?.close(), 60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `worker(i)` in `count` loops until `stop()` is true; collects failures instead of throwing. */
function loops(count: number, stop: () => boolean, worker: (loop: number, step: number) => Promise<void>) {
  const failures: unknown[] = [];
  let operations = 0;
  const done = Promise.all(
    Array.from({ length: count }, async (_, loop) => {
      for (let step = 0; !stop(); step++) {
        try {
          await worker(loop, step);
          operations++;
        } catch (error) {
          failures.push(error);
        }
      }
    }),
  );
  return { done, failures, operations: () => operations };
}

async function openOn(endpoints: string[], options: { dialTimeoutMs: number; requestTimeoutMs: number }) {
  return EtcdBackend.open({ endpoints, prefix: freshPrefix("fault"), ...options });
}

describe("a three-member cluster", () => {
  it("loses a follower while reads, writes and transactions run: no operation fails", async () => {
    const backend = await openOn(cluster.endpoints, { dialTimeoutMs: 1000, requestTimeoutMs: 8000 });
    const [follower] = await cluster.followers();
    let stopped = false;
    const run = loops(
      6,
      () => stopped,
      async (loop, step) => {
        const key = `f/${loop}/${step % 20}`;
        await backend.put(key, Buffer.from(String(step)));
        expect((await backend.get(key))?.toString()).toBe(String(step));
        await backend.transaction(async (tx) => {
          const n = Number((await tx.get(`count/${loop}`))?.toString() ?? "0");
          await tx.put(`count/${loop}`, Buffer.from(String(n + 1)));
        });
        await backend.list(`f/${loop}/`);
      },
    );
    try {
      await sleep(400);
      await follower!.kill();
      await sleep(1500);
      stopped = true;
      await run.done;
      expect(run.failures.map(String)).toEqual([]);
      expect(run.operations()).toBeGreaterThan(20);
    } finally {
      stopped = true;
      await backend.close();
      await follower!.restart();
    }
  }, 30_000);

  it("loses its leader while writes run: writes are retried and complete, and every acknowledged write is readable", async () => {
    const backend = await openOn(cluster.endpoints, { dialTimeoutMs: 1000, requestTimeoutMs: 8000 });
    const leader = await cluster.leader();
    const acknowledged = new Map<string, string>();
    const increments = new Map<number, number>();
    let stopped = false;
    const run = loops(
      8,
      () => stopped,
      async (loop, step) => {
        const key = `w/${loop}/${step}`;
        const value = `${loop}-${step}`;
        if (step % 4 === 3) {
          // A read-modify-write: after a lost answer its commit is resolved by its witness, never applied twice.
          await backend.transaction(async (tx) => {
            const n = Number((await tx.get(`count/${loop}`))?.toString() ?? "0");
            await tx.put(`count/${loop}`, Buffer.from(String(n + 1)));
          });
          increments.set(loop, (increments.get(loop) ?? 0) + 1);
          return;
        }
        if (step % 4 === 2) {
          await backend.transaction(async (tx) => {
            await tx.put(key, Buffer.from(value));
            await tx.put(`${key}/twin`, Buffer.from(value));
          });
          acknowledged.set(`${key}/twin`, value);
        } else {
          await backend.put(key, Buffer.from(value));
        }
        acknowledged.set(key, value);
      },
    );
    try {
      await sleep(400);
      const before = run.operations();
      const oldLeaderId = (await leader.status()).memberId;
      await leader.kill();
      await cluster.leader();
      // Leadership moved: every surviving member follows one of the survivors, not the killed member.
      const survivors = await Promise.all(cluster.members.filter((member) => member.running).map((member) => member.status()));
      expect(survivors).toHaveLength(2);
      const leaderIds = new Set(survivors.map((status) => status.leaderId));
      expect(leaderIds.size).toBe(1);
      const [newLeaderId] = leaderIds;
      expect(newLeaderId).not.toBe(oldLeaderId);
      expect(survivors.map((status) => status.memberId)).toContain(newLeaderId);
      await sleep(1500);
      stopped = true;
      await run.done;
      expect(run.failures.map(String)).toEqual([]);
      expect(run.operations()).toBeGreaterThan(before);
      const keys = [...acknowledged.keys()];
      const values = await backend.getMany(keys);
      const lost = keys.filter((key, i) => values[i]?.toString() !== acknowledged.get(key));
      expect(lost).toEqual([]);
      expect(keys.length).toBeGreaterThan(50);
      for (const [loop, count] of increments)
        expect((await backend.get(`count/${loop}`))?.toString(), `counter ${loop}`).toBe(String(count));
    } finally {
      stopped = true;
      await backend.close();
      await leader.restart();
      await cluster.waitHealthy();
    }
  }, 40_000);
});

describe("a network cut between the client and its only member", () => {
  it("fails with UNAVAILABLE (outcome unknown) within request_timeout, the feed stops being live, and both recover once restored", async () => {
    const proxy = new TcpProxy({ targetPort: cluster.members[0]!.clientPort });
    await proxy.start();
    const requestTimeoutMs = 2500;
    const backend = await EtcdBackend.open(
      { endpoints: [`http://127.0.0.1:${proxy.port}`], prefix: freshPrefix("cut"), dialTimeoutMs: 1000, requestTimeoutMs },
      { changeFeedTiming: { probeIntervalMs: 100, probeTimeoutMs: 500 } },
    );
    const liveCalls: boolean[] = [];
    const subscription = backend.subscribeChanges!({ change: () => undefined, live: (live) => liveCalls.push(live) });
    try {
      await backend.put("k", Buffer.from("before"));
      const waitFor = async (condition: () => boolean, ms: number) => {
        const deadline = Date.now() + ms;
        while (!condition() && Date.now() < deadline) await sleep(20);
        return condition();
      };
      expect(await waitFor(() => subscription.live, 5000)).toBe(true);

      proxy.cut();
      const started = Date.now();
      const error = await backend.put("k", Buffer.from("during")).catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(StorageError.isInstance(error, "UNAVAILABLE"), String(error)).toBe(true);
      // The put went out before the cut swallowed it: etcd may have applied it, and the error says so.
      expect((error as StorageError).retryable).toBe(false);
      expect((error as Error).message).toContain("outcome is unknown");
      expect(elapsed).toBeLessThan(requestTimeoutMs + 1000);
      expect(await waitFor(() => !subscription.live, 3000)).toBe(true);
      const health = await backend.health();
      expect(health.status).toBe("unhealthy");

      proxy.pass();
      const recovered = Date.now();
      let value: string | undefined;
      while (value === undefined && Date.now() - recovered < 10_000) {
        value = await backend
          .put("k", Buffer.from("after"))
          .then(() => "after")
          .catch(() => undefined);
      }
      expect(value).toBe("after");
      expect((await backend.get("k"))?.toString()).toBe("after");
      expect(await waitFor(() => subscription.live, 5000)).toBe(true);
      expect(liveCalls.slice(0, 2)).toEqual([true, false]);
      expect(liveCalls.at(-1)).toBe(true);
    } finally {
      subscription.close();
      await backend.close();
      await proxy.close();
    }
  }, 40_000);
});
