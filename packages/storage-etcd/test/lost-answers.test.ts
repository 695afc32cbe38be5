import { StorageError } from "@egide/storage-core";
import { GRPCDeadlineExceededError, GRPCUnavailableError, KVClient } from "etcd3";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { EtcdBackend } from "../src/index.js";
import { freshPrefix, useEtcd } from "./support/etcd-fixture.js";

const etcd = useEtcd();

/** Whether `request` (an etcd request object, nested) carries a buffer equal to `value` (or holding it, with `within`). */
function carries(request: unknown, value: Buffer, within = false): boolean {
  if (Buffer.isBuffer(request)) return within ? request.includes(value) : request.equals(value);
  if (Array.isArray(request)) return request.some((item) => carries(item, value, within));
  if (typeof request === "object" && request !== null) return Object.values(request).some((item) => carries(item, value, within));
  return false;
}

/**
 * A lost answer, deterministically: the first put or txn request that `matches` reaches etcd
 * and is applied; then `between` runs (another client's work, after the commit landed and
 * before its writer hears of it), and the call fails as a dropped connection does, so the
 * writer cannot know whether it landed. With `always`, every matching request loses its answer.
 */
function loseAnswer(
  matches: (request: unknown) => boolean,
  options: { between?: () => Promise<void>; error?: () => Error; always?: boolean } = {},
) {
  const error = options.error ?? (() => new GRPCUnavailableError("14 UNAVAILABLE: Connection dropped"));
  let lost = 0;
  const spies = (["txn", "put"] as const).map((method) => {
    const original = KVClient.prototype[method] as (this: KVClient, ...args: unknown[]) => Promise<unknown>;
    return vi.spyOn(KVClient.prototype, method).mockImplementation(async function (this: KVClient, ...args: unknown[]) {
      const response = await original.apply(this, args);
      if ((options.always || lost === 0) && matches(args[0])) {
        lost++;
        if (lost === 1) await options.between?.();
        throw error();
      }
      return response;
      // biome-ignore lint/suspicious/noExplicitAny: the spy takes either method's signature.
    } as any);
  });
  return {
    lost: () => lost,
    restore: () => {
      for (const spy of spies) spy.mockRestore();
    },
  };
}

describe("a commit whose answer is lost after etcd applied it", () => {
  const opened: EtcdBackend[] = [];
  let restore: (() => void) | undefined;
  afterEach(async () => {
    restore?.();
    restore = undefined;
    for (const backend of opened.splice(0)) await etcd.destroy(backend);
  });
  const pair = async () => {
    const prefix = freshPrefix("lost");
    const a = await etcd.open({ prefix });
    const b = await etcd.open({ prefix });
    opened.push(a, b);
    return { a, b };
  };

  it("is not applied again over another client's later commit (transaction)", async () => {
    const { a, b } = await pair();
    await a.put("a", Buffer.from("x"));
    await a.put("b", Buffer.from("orig"));
    let bSaw: string | undefined;
    const hook = loseAnswer((request) => carries(request, Buffer.from("A-value")), {
      between: () =>
        b.transaction(async (tx) => {
          bSaw = (await tx.get("b"))?.toString();
          await tx.put("b", Buffer.from("B-value"));
        }),
    });
    restore = hook.restore;
    let runs = 0;
    await a.transaction(async (tx) => {
      runs++;
      await tx.get("a");
      await tx.put("b", Buffer.from("A-value"));
    });
    expect(hook.lost()).toBe(1);
    // B read A's committed value and replaced it: A's first attempt landed, and was reported as such, once.
    expect(bSaw).toBe("A-value");
    expect(runs).toBe(1);
    expect((await a.get("b"))?.toString()).toBe("B-value");
  });

  it("is not applied again over another client's later commit (put), and is published before put resolves", async () => {
    const { a, b } = await pair();
    const seen: string[][] = [];
    const subscription = a.subscribeChanges!({ change: (change) => seen.push([...(change.keys ?? [])]), live: () => undefined });
    try {
      let bSaw: string | undefined;
      const hook = loseAnswer((request) => carries(request, Buffer.from("A")), {
        error: () => new GRPCDeadlineExceededError("4 DEADLINE_EXCEEDED: Deadline exceeded"),
        between: () =>
          b.transaction(async (tx) => {
            bSaw = (await tx.get("k"))?.toString();
            await tx.put("k", Buffer.from("B"));
          }),
      });
      restore = hook.restore;
      await a.put("k", Buffer.from("A"));
      expect(seen.flat()).toContain("k");
      expect(hook.lost()).toBe(1);
      expect(bSaw).toBe("A");
      expect((await a.get("k"))?.toString()).toBe("B");
    } finally {
      subscription.close();
    }
  });

  it("is not applied again over another client's later commit (delete)", async () => {
    const { a, b } = await pair();
    await a.put("d", Buffer.from("1"));
    let armed = false;
    const hook = loseAnswer(() => armed, { between: () => b.put("d", Buffer.from("B")) });
    restore = hook.restore;
    armed = true;
    await a.delete("d");
    expect(hook.lost()).toBe(1);
    expect((await a.get("d"))?.toString()).toBe("B");
  });

  it("writes an audit batch once", async () => {
    const { a } = await pair();
    const hook = loseAnswer((request) => carries(request, Buffer.from('"op":"once"'), true));
    restore = hook.restore;
    const records = await a.audit.appendMany(Array.from({ length: 3 }, (_, i) => ({ operation: "once", path: `p/${i}`, success: true })));
    expect(hook.lost()).toBe(1);
    expect((await a.audit.query()).map((record) => record.id)).toEqual(records.map((record) => record.id));
  });

  it("that cannot be resolved within request_timeout fails as UNAVAILABLE, not retryable, saying the outcome is unknown", async () => {
    const prefix = freshPrefix("unknown");
    const a = await etcd.open({ prefix, dialTimeoutMs: 300, requestTimeoutMs: 1200 });
    opened.push(a);
    const hook = loseAnswer((request) => carries(request, Buffer.from("U")), { always: true });
    restore = hook.restore;
    const error = await a.put("u", Buffer.from("U")).catch((e: unknown) => e);
    hook.restore();
    expect(StorageError.isInstance(error, "UNAVAILABLE"), String(error)).toBe(true);
    expect((error as StorageError).retryable).toBe(false);
    expect((error as Error).message).toContain("unknown");
    expect(hook.lost()).toBeGreaterThan(1);
    // It did land (the first attempt), and was applied once.
    expect((await a.get("u"))?.toString()).toBe("U");
  });
});

describe("witness keys", () => {
  it("live under a lease of the backend object, revoked on close", async () => {
    const prefix = freshPrefix("witness");
    const backend = await etcd.open({ prefix });
    try {
      await backend.put("k", Buffer.from("v"));
      await backend.transaction(async (tx) => {
        await tx.get("k");
        await tx.put("k", Buffer.from("w"));
      });
      const witnesses = await etcd.raw().getAll().prefix(`${prefix}meta/witness/`).exec();
      expect(witnesses.kvs.length).toBeGreaterThan(0);
      // A process that exits without close() leaves them to the lease's expiry, not forever.
      for (const kv of witnesses.kvs) expect(kv.lease).not.toBe("0");
    } finally {
      await backend.close();
    }
    expect(await etcd.raw().getAll().prefix(`${prefix}meta/witness/`).keys()).toEqual([]);
    await etcd.raw().delete().prefix(prefix);
  });
});
