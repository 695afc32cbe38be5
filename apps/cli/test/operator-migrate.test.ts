import { readFileSync, writeFileSync } from "node:fs";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import {
  Workspace,
  failure,
  fingerprint,
  initialize,
  initializeOffline,
  kvGetAll,
  postgresClient,
  postgresRowCount,
  seedRawRecords,
  serverEnv,
  spawnEgide,
  summarize,
  unsealThroughApi,
  waitFor,
} from "./support/backup-fixtures.js";
import type { Installation, Store } from "./support/backup-fixtures.js";

// `egide operator migrate` through the real binary: 100,000 raw records from SQLite to
// PostgreSQL, killed midway and resumed, verified by count and digest, and served afterwards
// by a server on the destination with the same keys; and the destinations it must refuse.

const SECRETS: Record<string, Record<string, string>> = {
  "secret/app/db": { user: "app", password: "migrated-p@ss" },
  "secret/app/api": { token: "tok-migrated", note: "héhé ✓" },
};
const PATHS = Object.keys(SECRETS);
const SEEDED = 100_000;

let ws: Workspace;
beforeAll(() => {
  assertBuildIsFresh();
  ws = Workspace.create("migrate");
});
afterAll(() => ws?.cleanup());

describe("SQLite to PostgreSQL, 100,000 entries", () => {
  let source: Store;
  let installation: Installation;
  let summary: { records: number; digest: string };
  let destination: Store;
  let client: pg.Client | undefined;

  beforeAll(async () => {
    source = ws.sqlite("big_source");
    const server = await ws.startServer(source);
    installation = await initialize(server);
    await Promise.all(
      PATHS.map((path) =>
        egide(["kv", "put", path, ...Object.entries(SECRETS[path] as Record<string, string>).map(([k, v]) => `${k}=${v}`)], {
          env: serverEnv(server.url, installation.rootToken),
        }),
      ),
    );
    await server.close();
    await seedRawRecords(source, SEEDED, { prefix: "bulk", valueBytes: 100 });
    summary = await summarize(source);
    destination = await ws.postgres("big_destination");
  }, 60_000);
  afterAll(() => client?.end());

  test("interrupted once (SIGKILL), refused without --resume, completed with --resume: verified count and digest equal the source's; a server on PostgreSQL unseals with the same keys and serves the secrets", async () => {
    expect(summary.records).toBeGreaterThan(SEEDED + PATHS.length);
    client = await postgresClient(destination);
    const pgClient = client;
    const rows = () => postgresRowCount(pgClient).catch(() => 0);

    const first = spawnEgide(["operator", "migrate", "--from", source.config, "--to", destination.config, "--batch-size", "1000"]);
    let ended = false;
    void first.exited.then(() => (ended = true));
    await waitFor(async () => (await rows()) >= 20_000, "20,000 rows in the destination", {
      timeoutMs: 60_000,
      intervalMs: 20,
      stop: () => ended,
    });
    first.child.kill("SIGKILL");
    expect((await first.exited).signal).toBe("SIGKILL");
    // Its PostgreSQL sessions end (rolling back whatever batch was in flight) before anything is counted.
    await waitFor(
      async () =>
        (
          await pgClient.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
          )
        ).rows[0]?.n === 0,
      "the killed migration's sessions to end",
      { intervalMs: 20 },
    );

    // Each batch committed with its progress record: whole batches, nothing half-written.
    const afterKill = await rows();
    expect(afterKill).toBeLessThan(summary.records);
    const { rows: marker } = await pgClient.query<{ value: Buffer }>(
      "SELECT value FROM egide_storage WHERE key = '.egide/migration-progress'",
    );
    const progress = JSON.parse(marker[0]!.value.toString("utf8")) as { copied: number; lastKey: string };
    expect(progress.copied % 1000).toBe(0);
    expect(afterKill).toBe(progress.copied + 1);

    const plain = await egide(["operator", "migrate", "--from", source.config, "--to", destination.config, "--batch-size", "1000"]);
    expect(failure(plain)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message:
        "egide: migration failed: the destination holds an interrupted migration: continue it with --resume, or start over with --force [TARGET_NOT_EMPTY]",
    });
    expect(await rows()).toBe(afterKill);

    const resumed = await egide(
      ["operator", "migrate", "--from", source.config, "--to", destination.config, "--batch-size", "1000", "--resume"],
      { timeoutMs: 90_000 },
    );
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    const copied = summary.records - progress.copied;
    expect(resumed.stdout).toBe(
      `Success! Copied ${copied} entries (resumed after ${progress.copied}) from sqlite to postgresql; verified: both hold ${summary.records} entries with digest ${summary.digest}\n`,
    );
    // The destination holds exactly the source's records (the progress record is gone), and the source is untouched.
    expect(await rows()).toBe(summary.records);
    expect(await summarize(destination)).toEqual(summary);
    expect(await summarize(source)).toEqual(summary);

    const server = await ws.startServer(destination);
    try {
      expect(await unsealThroughApi(server.url, installation.keys.slice(1, 3))).toMatchObject({ sealed: false });
      expect(await kvGetAll(serverEnv(server.url, installation.rootToken), PATHS)).toEqual(SECRETS);
    } finally {
      await server.close();
    }
  }, 120_000);
});

describe("destinations that are refused", () => {
  let source: Store;
  let sourceSummary: { records: number; digest: string };
  beforeAll(async () => {
    source = ws.sqlite("small_source");
    await initializeOffline(source);
    await seedRawRecords(source, 10, { prefix: "small" });
    sourceSummary = await summarize(source);
  });

  test("a destination that holds records is refused without --force (and --resume without an interrupted migration); --force replaces it", async () => {
    for (const kind of ["sqlite", "postgresql"] as const) {
      const destination = await ws.store(kind, `occupied_${kind}`);
      await initializeOffline(destination);
      await seedRawRecords(destination, 5, { prefix: "other" });
      const before = await fingerprint(destination);
      const [plain, resume] = await Promise.all([
        egide(["operator", "migrate", "--from", source.config, "--to", destination.config]),
        egide(["operator", "migrate", "--from", source.config, "--to", destination.config, "--resume"]),
      ]);
      expect(failure(plain), kind).toEqual({
        code: 1,
        stdout: "",
        lines: 1,
        message: "egide: migration failed: the destination storage already holds records (use --force to replace them) [TARGET_NOT_EMPTY]",
      });
      expect(failure(resume), kind).toEqual({
        code: 1,
        stdout: "",
        lines: 1,
        message:
          "egide: migration failed: the destination holds records but no interrupted migration to resume (use --force to replace them) [TARGET_NOT_EMPTY]",
      });
      expect(await fingerprint(destination), kind).toEqual(before);

      const forced = await egide([
        "operator",
        "migrate",
        "--from",
        source.config,
        "--to",
        destination.config,
        "--force",
        "--format",
        "json",
      ]);
      expect(forced.stderr, kind).toBe("");
      expect(forced.code, kind).toBe(0);
      expect(JSON.parse(forced.stdout), kind).toEqual({
        copied: sourceSummary.records,
        resumed_after: 0,
        entries: sourceSummary.records,
        digest: sourceSummary.digest,
        verified: true,
      });
      expect(await summarize(destination), kind).toEqual(sourceSummary);
    }
  });

  test("bad arguments are usage errors (exit 2)", async () => {
    const destination = ws.sqlite("never_written");
    const runs = await Promise.all([
      egide(["operator", "migrate", "--from", source.config]),
      egide(["operator", "migrate", "--to", destination.config]),
      egide(["operator", "migrate", "--from", source.config, "--to", destination.config, "--batch-size", "0"]),
      egide(["operator", "migrate", "--from", source.config, "--to", destination.config, "--batch-size", "ten"]),
    ]);
    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toMatch(/^egide: .*(--to|--from|--batch-size)/);
    }
    const missing = await egide(["operator", "migrate", "--from", ws.path("missing.toml"), "--to", destination.config]);
    expect(failure(missing)).toMatchObject({
      code: 2,
      stdout: "",
      lines: 1,
      message: expect.stringMatching(/^egide: cannot read the configuration \S+missing\.toml: ENOENT$/),
    });
  });

  test("--batch-size above the library's 100000 limit is a usage error (exit 2) like a bad --chunk-size, and opens no storage", async () => {
    const destination = ws.sqlite("batch_too_large");
    const run = await egide(["operator", "migrate", "--from", source.config, "--to", destination.config, "--batch-size", "100001"]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("--batch-size");
    expect(() => readFileSync(destination.sqlitePath as string)).toThrow();
  });

  test("a storage migrated onto itself with --force is refused and keeps its records (same configuration file, or another file naming the same database)", async () => {
    const store = ws.sqlite("self");
    await initializeOffline(store);
    await seedRawRecords(store, 10, { prefix: "self" });
    const before = await summarize(store);
    const alias = ws.path("alias.toml");
    writeFileSync(alias, readFileSync(store.config, "utf8"));

    const same = await egide(["operator", "migrate", "--from", store.config, "--to", store.config, "--force"]);
    const afterSame = await summarize(store);
    const aliased = await egide(["operator", "migrate", "--from", store.config, "--to", alias, "--force"]);
    const afterAlias = await summarize(store);
    expect({ code: same.code, records: afterSame.records }).toEqual({ code: 1, records: before.records });
    expect(failure(same)).toMatchObject({ code: 1, stdout: "", lines: 1 });
    expect(afterSame).toEqual(before);
    expect(failure(aliased)).toMatchObject({ code: 1, stdout: "", lines: 1 });
    expect(afterAlias).toEqual(before);
  });

  test("a migration from a storage that does not exist (a mistyped SQLite path) is refused instead of reporting a verified copy of 0 entries, and creates no source file", async () => {
    const missing = ws.sqlite("mistyped_source");
    const destination = ws.sqlite("empty_destination");
    const run = await egide(["operator", "migrate", "--from", missing.config, "--to", destination.config]);
    expect(run.stdout).not.toMatch(/^Success! Copied 0 entries/);
    expect(failure(run)).toMatchObject({ code: 1, stdout: "", lines: 1 });
    expect(() => readFileSync(missing.sqlitePath as string)).toThrow();
  });
});
