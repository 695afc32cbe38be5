import { type EtcdCluster, startEtcd } from "@egide/test-etcd";
import { StorageError } from "@egide/storage-core";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdBackend, backendDefinition } from "../src/index.js";

const ROOT_PASSWORD = "root-pw-7d1f";
const PASSWORD = "egide-pw-93ac";
const WRONG = "wrong-pw-55e0";

let cluster: EtcdCluster;

beforeAll(async () => {
  cluster = await startEtcd();
  const admin = new Etcd3({ hosts: cluster.endpoints });
  try {
    await admin.role("root").create();
    await admin.user("root").create(ROOT_PASSWORD);
    await admin.user("root").addRole("root");
    const role = await admin.role("egide-rw").create();
    await role.grant({ permission: "Readwrite", range: admin.range({ prefix: "app/" }) });
    await admin.user("egide").create(PASSWORD);
    await admin.user("egide").addRole("egide-rw");
    await admin.auth.authEnable();
  } finally {
    admin.close();
  }
}, 60_000);

afterAll(() => cluster?.close(), 60_000);

const table = (extra: Record<string, unknown> = {}) => ({
  endpoints: cluster.endpoints,
  prefix: "app/",
  username: "egide",
  password_env: "EGIDE_ETCD_PASSWORD",
  dial_timeout: 1000,
  request_timeout: 3000,
  ...extra,
});

describe("password authentication", () => {
  it("works for a user with a readwrite role on the prefix: data, transactions, listing, audit and the change feed", async () => {
    const backend = await backendDefinition.create(backendDefinition.parseConfig(table(), { EGIDE_ETCD_PASSWORD: PASSWORD }));
    try {
      const live = new Promise<void>((resolve) => {
        backend.subscribeChanges?.({ change: () => undefined, live: (isLive) => isLive && resolve() });
      });
      await live;
      await backend.put("a/b", Buffer.from("1"));
      await backend.transaction(async (tx) => {
        expect((await tx.get("a/b"))?.toString()).toBe("1");
        await tx.put("a/c", Buffer.from("2"));
      });
      expect(await backend.list("a/")).toEqual(["b", "c"]);
      await backend.delete("a/b");
      expect((await backend.audit.append({ operation: "update", path: "a/c", success: true })).id).toBeGreaterThan(0);
      expect(await backend.health()).toMatchObject({ status: "healthy" });
    } finally {
      await backend.close();
    }
  });

  it("refuses a wrong password with a clear, non-retryable error that does not contain it", async () => {
    const error = await backendDefinition
      .create(backendDefinition.parseConfig(table(), { EGIDE_ETCD_PASSWORD: WRONG }))
      .catch((e: unknown) => e);
    expect(StorageError.isInstance(error, "UNAVAILABLE")).toBe(true);
    expect((error as StorageError).retryable).toBe(false);
    expect((error as Error).message).toContain('user "egide" (authentication failed)');
    expect((error as Error).message).not.toContain(WRONG);
    expect(JSON.stringify(error)).not.toContain(WRONG);
  });

  it("names the missing permission when the user may not touch the prefix", async () => {
    const error = await EtcdBackend.open({
      endpoints: cluster.endpoints,
      prefix: "other/",
      username: "egide",
      password: PASSWORD,
      dialTimeoutMs: 1000,
      requestTimeoutMs: 3000,
    }).catch((e: unknown) => e);
    expect(StorageError.isInstance(error, "UNAVAILABLE")).toBe(true);
    expect((error as StorageError).retryable).toBe(false);
    expect((error as Error).message).toContain('is not allowed to connect under "other/"');
  });

  it("says authentication is required when no user is configured", async () => {
    const error = await EtcdBackend.open({
      endpoints: cluster.endpoints,
      prefix: "app/",
      dialTimeoutMs: 1000,
      requestTimeoutMs: 3000,
    }).catch((e: unknown) => e);
    expect(StorageError.isInstance(error, "UNAVAILABLE")).toBe(true);
    expect((error as StorageError).retryable).toBe(false);
    expect((error as Error).message).toMatch(/authentication|not allowed/);
  });
});
