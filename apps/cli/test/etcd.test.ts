import { readFileSync } from "node:fs";
import { type EtcdCluster, startEtcd } from "@egide/test-etcd";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import {
  type Installation,
  initialize,
  kvGetAll,
  kvPut,
  keysInput,
  type StartedServer,
  type Store,
  serverEnv,
  summarize,
  unsealThroughApi,
  Workspace,
} from "./support/backup-fixtures.js";

// The server and the CLI on etcd, an adapter neither of them names: `[storage] type = "etcd"`
// finds @egide/storage-etcd by the package convention. Health, KV v2, tokens and the audit log
// on a one-member etcd started here; an online backup restored into another prefix; migrate
// from etcd to PostgreSQL and back, each destination served afterwards with the same keys.

const SECRETS: Record<string, Record<string, string>> = {
  "secret/app/db": { user: "app", password: "etcd-p@ss" },
  "secret/app/api": { token: "tok-etcd", note: "héhé ✓" },
  "secret/team/one": { owner: "team" },
};
const PATHS = Object.keys(SECRETS);

let ws: Workspace;
let etcd: EtcdCluster;
let source: Store;
let installation: Installation;
let backupFile: string;

beforeAll(async () => {
  assertBuildIsFresh();
  ws = Workspace.create("etcd");
  etcd = await startEtcd();
}, 60_000);
afterAll(async () => {
  try {
    await ws?.cleanup();
  } finally {
    await etcd?.close();
  }
});

/** Starts a server on `store`, unseals it with `installation`'s keys, and returns it. */
async function serveUnsealed(store: Store): Promise<StartedServer> {
  const server = await ws.startServer(store);
  expect(await unsealThroughApi(server.url, installation.keys.slice(0, 2))).toMatchObject({ sealed: false });
  return server;
}

/** Reads every secret back through `egide kv get` on a server of `store`, then stops it. */
async function secretsServedBy(store: Store): Promise<Record<string, Record<string, string> | null>> {
  const server = await serveUnsealed(store);
  try {
    return await kvGetAll(serverEnv(server.url, installation.rootToken), PATHS);
  } finally {
    await server.close();
  }
}

describe("the server on etcd, configured only by TOML", () => {
  test("health names etcd; KV v2, tokens and the audit log work through the CLI; an online backup is taken", async () => {
    source = ws.etcd(etcd.endpoints, "source");
    expect(readFileSync(source.config, "utf8")).toContain('type = "etcd"');
    const server = await ws.startServer(source);
    installation = await initialize(server);
    const env = serverEnv(server.url, installation.rootToken);

    const health = await fetch(`${server.url}/v1/sys/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ initialized: true, sealed: false, storage: { type: "etcd", status: "healthy" } });

    for (const path of PATHS) await kvPut(env, path, SECRETS[path] as Record<string, string>);
    expect(await kvGetAll(env, PATHS)).toEqual(SECRETS);
    // A second version, then the first read back by number.
    await kvPut(env, "secret/app/db", { user: "app", password: "rotated" });
    const v1 = await egide(["kv", "get", "--format", "json", "--version", "1", "secret/app/db"], { env });
    expect(v1.code, v1.stderr).toBe(0);
    expect(JSON.parse(v1.stdout).data.data).toEqual(SECRETS["secret/app/db"]);
    await kvPut(env, "secret/app/db", SECRETS["secret/app/db"] as Record<string, string>);

    const created = await egide(["token", "create", "--policy", "default", "--ttl", "1h", "--format", "json"], { env });
    expect(created.code, created.stderr).toBe(0);
    const child = JSON.parse(created.stdout).auth.client_token as string;
    const lookup = await egide(["token", "lookup", "--format", "json"], { env: serverEnv(server.url, child) });
    expect(lookup.code, lookup.stderr).toBe(0);
    expect(JSON.parse(lookup.stdout).data.policies).toEqual(["default"]);
    const revoked = await egide(["token", "revoke", child], { env });
    expect(revoked.code, revoked.stderr).toBe(0);
    const afterRevoke = await egide(["token", "lookup"], { env: serverEnv(server.url, child) });
    expect(afterRevoke.code).not.toBe(0);

    const audit = await egide(["audit", "list", "--format", "json", "--path", "secret/"], { env });
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toContain("secret/");

    backupFile = ws.path("etcd-online.enc");
    const backup = await egide(["operator", "backup", "--output", backupFile], { env });
    expect(backup.code, backup.stderr).toBe(0);
    await server.close();
  }, 120_000);

  test("the backup restores into another etcd prefix, which serves the same secrets with the same keys", async () => {
    const target = ws.etcd(etcd.endpoints, "restored");
    const restored = await egide(["operator", "restore", "--input", backupFile, "--config", target.config, "--force", "--format", "json"], {
      input: keysInput(installation.keys),
      timeoutMs: 60_000,
    });
    expect(restored.code, restored.stderr).toBe(0);
    // What was restored is what the source held when its server stopped after the backup (the
    // restore then adds a key version of its own, so the target's digest differs by design).
    const atBackup = await summarize(source);
    expect(JSON.parse(restored.stdout)).toMatchObject({ entries: atBackup.records, digest: atBackup.digest });
    expect((await summarize(target)).records).toBeGreaterThanOrEqual(atBackup.records);
    expect(await secretsServedBy(target)).toEqual(SECRETS);
  }, 120_000);

  test("migrate etcd → PostgreSQL → etcd: every record arrives, and each destination serves the secrets", async () => {
    const postgres = await ws.postgres("from_etcd");
    const toPostgres = await egide(["operator", "migrate", "--from", source.config, "--to", postgres.config], { timeoutMs: 90_000 });
    expect(toPostgres.code, toPostgres.stderr).toBe(0);
    const sourceSummary = await summarize(source);
    expect(await summarize(postgres)).toEqual(sourceSummary);
    expect(await secretsServedBy(postgres)).toEqual(SECRETS);

    const back = ws.etcd(etcd.endpoints, "from_postgres");
    const toEtcd = await egide(["operator", "migrate", "--from", postgres.config, "--to", back.config], { timeoutMs: 90_000 });
    expect(toEtcd.code, toEtcd.stderr).toBe(0);
    expect(await summarize(back)).toEqual(await summarize(postgres));
    expect(await secretsServedBy(back)).toEqual(SECRETS);
  }, 180_000);
});
