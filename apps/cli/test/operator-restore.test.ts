import { readFileSync, statSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { END_BYTES, encodeRecord } from "@egide/storage-backup";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import {
  Workspace,
  backupLayout,
  failure,
  fingerprint,
  flipBit,
  initialize,
  initializeOffline,
  keysInput,
  kvGet,
  kvGetAll,
  kvPut,
  openRaw,
  rawRecords,
  serverEnv,
  summarize,
  unsealThroughApi,
} from "./support/backup-fixtures.js";
import type { Installation, Store, StoreFingerprint } from "./support/backup-fixtures.js";
import type { JsonBody } from "@egide/test-server";

// `egide operator restore` (with the backups `egide operator backup` writes) through the real
// binary: round trips between SQLite and PostgreSQL ending in a server that unseals with the
// same keys and serves every secret, and every way a damaged or foreign file, wrong keys or a
// non-empty target is refused while the target stays byte-for-byte as it was.

const SECRETS: Record<string, Record<string, string>> = {
  "secret/app/db": { user: "app", password: "p@ss=w0rd" },
  "secret/app/api": { token: "tok-1234567890" },
  "secret/team/ops/pager": { number: "+33 6 12 34 56 78", note: "héhé ✓" },
};
const PATHS = Object.keys(SECRETS);

let ws: Workspace;
beforeAll(() => {
  assertBuildIsFresh();
  ws = Workspace.create("restore");
});
afterAll(() => ws?.cleanup());

/** An installation with SECRETS written by `egide kv put`, its server stopped, and its backups. */
interface Source {
  store: Store;
  installation: Installation;
  /** Taken online (`--address`/`--token`) while the server ran. */
  online: string;
  onlineRun: { code: number | null; stdout: string; stderr: string };
  /** Taken offline (`--config`, keys on stdin) after the server stopped. */
  offline: string;
  offlineRun: { code: number | null; stdout: string; stderr: string };
  /** The raw records of the stopped store (equal to the offline backup's). */
  summary: { records: number; digest: string };
}

const sources = new Map<"sqlite" | "postgresql", Promise<Source>>();

/** The source installation of `kind`, built once per file. */
function source(kind: "sqlite" | "postgresql"): Promise<Source> {
  let built = sources.get(kind);
  if (!built) {
    built = buildSource(kind);
    sources.set(kind, built);
  }
  return built;
}

async function buildSource(kind: "sqlite" | "postgresql"): Promise<Source> {
  const store = await ws.store(kind, `src_${kind}`);
  const server = await ws.startServer(store);
  const installation = await initialize(server);
  const env = serverEnv(server.url, installation.rootToken);
  await Promise.all(PATHS.map((path) => kvPut(env, path, SECRETS[path] as Record<string, string>)));
  const online = ws.path(`${kind}-online.enc`);
  const onlineRun = await egide(["operator", "backup", "--output", online], { env });
  await server.close();
  const summary = await summarize(store);
  const offline = ws.path(`${kind}-offline.enc`);
  const offlineRun = await egide(["operator", "backup", "--config", store.config, "--output", offline, "--format", "json"], {
    input: keysInput(installation.keys),
  });
  return { store, installation, online, onlineRun, offline, offlineRun, summary };
}

/** `egide operator restore --input FILE --config STORE` with keys on stdin (and `--force` unless told). */
function restore(
  file: string,
  store: Store,
  keys: readonly string[],
  options: { force?: boolean; threshold?: number; extra?: string[] } = {},
) {
  return egide(
    [
      "operator",
      "restore",
      "--input",
      file,
      "--config",
      store.config,
      ...(options.force === false ? [] : ["--force"]),
      ...(options.extra ?? []),
    ],
    { input: keysInput(keys, options.threshold ?? 2), timeoutMs: 30_000 },
  );
}

/**
 * Starts a server on a restored store, checks it comes up sealed and unseals with `keys` (other
 * shares than the restore was given), and reads every secret back with `egide kv get` and the
 * original root token.
 */
async function serveAndRead(
  store: Store,
  installation: Installation,
  keys = installation.keys.slice(1, 3),
): Promise<Record<string, Record<string, string> | null>> {
  const server = await ws.startServer(store);
  try {
    const status = (await (await fetch(`${server.url}/v1/sys/seal-status`)).json()) as { initialized: boolean; sealed: boolean };
    expect(status).toMatchObject({ initialized: true, sealed: true });
    expect(await unsealThroughApi(server.url, keys)).toMatchObject({ sealed: false });
    return await kvGetAll(serverEnv(server.url, installation.rootToken), PATHS);
  } finally {
    await server.close();
  }
}

/** A request to a server's API with `token`. */
async function apiCall(url: string, token: string, method: string, path: string): Promise<{ status: number; body: JsonBody }> {
  const response = await fetch(`${url}/v1/${path}`, { method, headers: { "x-vault-token": token } });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}

/** A secret's latest data read through the API (null when it has none). */
async function apiData(url: string, token: string, path: string): Promise<Record<string, string> | null> {
  const response = await fetch(`${url}/v1/secret/data/${path}`, { headers: { "x-vault-token": token } });
  if (response.status === 404) return null;
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { data: Record<string, string> } }).data.data;
}

/** The restored store holds exactly the source's records, but for the keyring the restore rotated. */
async function expectSameRecordsButKeyring(restored: Store, original: Map<string, string>): Promise<void> {
  const records = await rawRecords(restored);
  expect([...records.keys()]).toEqual([...original.keys()]);
  for (const [key, value] of original) {
    if (key === ".egide/keyring") expect(records.get(key), key).not.toBe(value);
    else expect(records.get(key), key).toBe(value);
  }
}

describe("round trips", () => {
  for (const kind of ["sqlite", "postgresql"] as const) {
    test(`${kind}: the online and the offline backup each restore into a blank ${kind} storage holding the source's records; a server on it unseals with the same keys and serves every secret`, async () => {
      const src = await source(kind);
      expect(src.onlineRun.stderr).toBe("");
      expect(src.onlineRun.code).toBe(0);
      expect(src.onlineRun.stdout).toMatch(
        new RegExp(
          `^Success! Backup written to ${src.online.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(\\d+(\\.\\d)? (B|KiB), \\d+ entries\\)\\n$`,
        ),
      );
      expect(src.offlineRun.stderr).toBe("");
      expect(src.offlineRun.code).toBe(0);
      // The offline backup reports exactly the stopped store's records.
      expect(JSON.parse(src.offlineRun.stdout)).toEqual({
        output: src.offline,
        bytes: statSync(src.offline).size,
        entries: src.summary.records,
        digest: src.summary.digest,
      });
      expect(src.summary.records).toBeGreaterThan(PATHS.length + 3);
      const original = await rawRecords(src.store);

      const fromOnline = await ws.store(kind, "blank_a");
      const fromOffline = await ws.store(kind, "blank_b");
      const [a, b] = await Promise.all([
        restore(src.online, fromOnline, src.installation.keys, { force: false }),
        restore(src.offline, fromOffline, src.installation.keys, { force: false, extra: ["--format", "json"] }),
      ]);
      expect(a.stderr).toBe("");
      expect(a.code).toBe(0);
      expect(a.stdout).toMatch(
        new RegExp(
          `^Success! Restored ${src.summary.records} entries \\(.+, snapshot of \\d{4}-\\d\\d-\\d\\dT.+Z\\) into ${fromOnline.config.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}; new key version \\d+\\. Start the server and unseal it with the same keys\\.\\n$`,
        ),
      );
      expect(b.stderr).toBe("");
      expect(b.code).toBe(0);
      const report = JSON.parse(b.stdout);
      expect(report).toMatchObject({ input: src.offline, entries: src.summary.records, digest: src.summary.digest, replaced: 0 });
      expect(report.key_version).toBeGreaterThan(1);

      // Both hold the source's records exactly (but the keyring, rotated by the restore); a
      // server on one of them unseals and serves every secret.
      await expectSameRecordsButKeyring(fromOnline, original);
      await expectSameRecordsButKeyring(fromOffline, original);
      expect(await serveAndRead(fromOnline, src.installation)).toEqual(SECRETS);
    });
  }

  test("a SQLite backup restores into a blank PostgreSQL database, and a PostgreSQL backup into a blank SQLite file", async () => {
    const [sqlite, postgres] = await Promise.all([source("sqlite"), source("postgresql")]);
    expect(sqlite.offlineRun.code).toBe(0);
    expect(postgres.onlineRun.code).toBe(0);
    const intoPostgres = await ws.postgres("from_sqlite");
    const intoSqlite = ws.sqlite("from_postgres");
    const [a, b] = await Promise.all([
      restore(sqlite.offline, intoPostgres, sqlite.installation.keys, { force: false }),
      restore(postgres.online, intoSqlite, postgres.installation.keys, { force: false }),
    ]);
    expect(failure(a)).toMatchObject({ code: 0, lines: 0 });
    expect(failure(b)).toMatchObject({ code: 0, lines: 0 });
    await expectSameRecordsButKeyring(intoPostgres, await rawRecords(sqlite.store));
    expect(await serveAndRead(intoPostgres, sqlite.installation)).toEqual(SECRETS);
    expect(await serveAndRead(intoSqlite, postgres.installation)).toEqual(SECRETS);
  });

  test("restoring into the original storage with --force brings back the backup's values: changed, deleted and added secrets are undone", async () => {
    const src = await source("postgresql");
    const server = await ws.startServer(src.store);
    await unsealThroughApi(server.url, src.installation.keys.slice(0, 2));
    const env = serverEnv(server.url, src.installation.rootToken);
    // A key rotation after the backup too: the restore must activate a version past it.
    expect((await apiCall(server.url, src.installation.rootToken, "PUT", "sys/rotate")).status).toBeLessThan(300);
    const rotatedTerm = (await apiCall(server.url, src.installation.rootToken, "GET", "sys/key-status")).body.term as number;
    expect(rotatedTerm).toBeGreaterThan(1);
    const [changed, deleted, added] = await Promise.all([
      egide(["kv", "put", "secret/app/db", "user=app", "password=changed-after-the-backup"], { env }),
      egide(["kv", "delete", "secret/app/api"], { env }),
      egide(["kv", "put", "secret/app/new", "added=after the backup"], { env }),
    ]);
    expect([changed.code, deleted.code, added.code]).toEqual([0, 0, 0]);
    // The changes took effect (read through the API).
    expect(await apiData(server.url, src.installation.rootToken, "app/db")).toEqual({ user: "app", password: "changed-after-the-backup" });
    expect(await apiData(server.url, src.installation.rootToken, "app/api")).toBeNull();
    expect(await apiData(server.url, src.installation.rootToken, "app/new")).toEqual({ added: "after the backup" });
    await server.close();

    const before = await summarize(src.store);
    const run = await restore(src.online, src.store, src.installation.keys, { extra: ["--format", "json"] });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    // Everything the target held was replaced (the records of the added secret included).
    expect(report.replaced).toBe(before.records);
    expect(report.entries).toBeLessThan(before.records);
    expect(report.key_version).toBeGreaterThan(rotatedTerm);

    const started = await ws.startServer(src.store);
    try {
      await unsealThroughApi(started.url, src.installation.keys.slice(1, 3));
      expect((await apiCall(started.url, src.installation.rootToken, "GET", "sys/key-status")).body.term).toBe(report.key_version);
      expect(await kvGetAll(serverEnv(started.url, src.installation.rootToken), [...PATHS, "secret/app/new"])).toEqual({
        ...SECRETS,
        "secret/app/new": null,
      });
      // The restored installation keeps working under its new key version: a write reads back.
      const write = await fetch(`${started.url}/v1/secret/data/app/after-restore`, {
        method: "POST",
        headers: { "x-vault-token": src.installation.rootToken, "content-type": "application/json" },
        body: JSON.stringify({ data: { ok: "yes" } }),
      });
      expect(write.status).toBe(200);
      expect(await apiData(started.url, src.installation.rootToken, "app/after-restore")).toEqual({ ok: "yes" });
    } finally {
      await started.close();
    }
  });

  test("an empty installation (initialised, no secret written) round trips", async () => {
    const empty = ws.sqlite("empty");
    const server = await ws.startServer(empty);
    const installation = await initialize(server);
    await server.close();
    const original = await rawRecords(empty);
    const file = ws.path("empty.enc");
    const backup = await egide(["operator", "backup", "--config", empty.config, "--output", file], { input: keysInput(installation.keys) });
    expect(backup.stderr).toBe("");
    expect(backup.code).toBe(0);
    expect(backup.stdout).toContain(`, ${original.size} entries)`);
    const target = await ws.postgres("empty_target");
    const run = await restore(file, target, installation.keys, { force: false });
    expect(failure(run)).toMatchObject({ code: 0, lines: 0 });
    expect(run.stdout).toContain(`Success! Restored ${original.size} entries`);
    await expectSameRecordsButKeyring(target, original);
    // The restored installation unseals and its root token works; it holds no secret.
    const restored = await ws.startServer(target);
    try {
      await unsealThroughApi(restored.url, installation.keys.slice(1, 3));
      const env = serverEnv(restored.url, installation.rootToken);
      const lookup = await egide(["token", "lookup", "--format", "json"], { env });
      expect(lookup.code).toBe(0);
      expect(JSON.parse(lookup.stdout).data.policies).toContain("root");
      expect(await kvGet(env, "secret/app/db")).toBeNull();
    } finally {
      await restored.close();
    }
  });

  test("a backup whose content fills exactly one chunk is header + chunk size + 16 bytes and restores", async () => {
    const src = await source("sqlite");
    expect(src.offlineRun.code).toBe(0);
    // The content length from the raw records themselves: every record's encoding and the end marker.
    const raw = await openRaw(src.store);
    let content = END_BYTES;
    try {
      for await (const { key, value } of raw.scan("")) content += encodeRecord(key, value).length;
    } finally {
      await raw.close();
    }
    const layout = backupLayout(readFileSync(src.offline));
    expect(layout.contentBytes).toBe(content);

    const exact = ws.path("exact.enc");
    // And one byte less per chunk: a full chunk and a final chunk of one byte.
    const split = ws.path("split.enc");
    const runs = await Promise.all(
      [
        [exact, content],
        [split, content - 1],
      ].map(([file, size]) =>
        egide(["operator", "backup", "--config", src.store.config, "--output", String(file), "--chunk-size", String(size)], {
          input: keysInput(src.installation.keys),
        }),
      ),
    );
    for (const run of runs) expect(failure(run)).toMatchObject({ code: 0, lines: 0 });
    const bytes = readFileSync(exact);
    expect(bytes.readUInt32BE(10)).toBe(content);
    expect(bytes.length).toBe(layout.headerBytes + content + 16);
    expect(backupLayout(bytes).chunks).toHaveLength(1);
    expect(statSync(split).size).toBe(layout.headerBytes + (content - 1 + 16) + (1 + 16));

    const targets = [ws.sqlite("exact_target"), ws.sqlite("split_target")];
    const restored = await Promise.all([
      restore(exact, targets[0] as Store, src.installation.keys, { force: false }),
      restore(split, targets[1] as Store, src.installation.keys, { force: false }),
    ]);
    const original = await rawRecords(src.store);
    for (const [i, r] of restored.entries()) {
      expect(failure(r)).toMatchObject({ code: 0, lines: 0 });
      expect(r.stdout).toContain(`Success! Restored ${original.size} entries`);
      await expectSameRecordsButKeyring(targets[i] as Store, original);
    }
  });
});

describe("a damaged, foreign or wrong file is refused and the target is unchanged", () => {
  const RESTORE_FAILED = "egide: restore failed, nothing was changed: ";
  let src: Source;
  /** A copy of the offline backup in four chunks. */
  let chunked: Buffer;
  let layout: ReturnType<typeof backupLayout>;
  let header: Buffer;
  let chunks: Buffer[];
  /** The one-chunk backup (content fills its chunk exactly). */
  let oneFullChunk: Buffer;
  let before: StoreFingerprint;

  beforeAll(async () => {
    src = await source("sqlite");
    if (src.offlineRun.code !== 0) throw new Error(`the offline backup failed: ${src.offlineRun.stderr}`);
    const content = backupLayout(readFileSync(src.offline)).contentBytes;
    const chunkSize = Math.max(256, Math.ceil(content / 3.5));
    const file = ws.path("chunked.enc");
    const exact = ws.path("one-full-chunk.enc");
    const runs = await Promise.all([
      egide(["operator", "backup", "--config", src.store.config, "--output", file, "--chunk-size", String(chunkSize)], {
        input: keysInput(src.installation.keys),
      }),
      egide(["operator", "backup", "--config", src.store.config, "--output", exact, "--chunk-size", String(content)], {
        input: keysInput(src.installation.keys),
      }),
    ]);
    for (const run of runs) if (run.code !== 0) throw new Error(`backup failed: ${run.stderr}`);
    chunked = readFileSync(file);
    layout = backupLayout(chunked);
    header = chunked.subarray(0, layout.headerBytes);
    chunks = layout.chunks.map((chunk) => chunked.subarray(chunk.start, chunk.end));
    oneFullChunk = readFileSync(exact);
    // The three backups above read the store at once: whichever closed last may have left a WAL
    // that the next open checkpoints (same records, other file bytes). Settle it once first, so
    // `before` is the store as fingerprinting finds it at rest.
    await fingerprint(src.store);
    before = await fingerprint(src.store);
  });

  interface Case {
    label: string;
    bytes: Buffer;
    keys?: string[];
    /** The one line on stderr (a string, or an asymmetric matcher). */
    message: unknown;
  }

  /**
   * Restores every case's file into the source store (which holds data) with --force, two at a
   * time, and checks each exits 1 with exactly its one-line message and nothing on stdout; then
   * that the store's raw records and database file are exactly as before.
   */
  async function expectRefused(cases: Case[]): Promise<void> {
    const results: Array<ReturnType<typeof failure>> = [];
    for (let i = 0; i < cases.length; i += 2) {
      const batch = cases.slice(i, i + 2);
      const runs = await Promise.all(
        batch.map((c, j) => {
          const file = ws.path(`damaged-${i + j}.enc`);
          writeFileSync(file, c.bytes);
          return restore(file, src.store, c.keys ?? src.installation.keys);
        }),
      );
      results.push(...runs.map(failure));
    }
    for (const [i, c] of cases.entries()) {
      expect(results[i], c.label).toEqual({ code: 1, stdout: "", lines: 1, message: c.message });
    }
    expect(await fingerprint(src.store)).toEqual(before);
  }

  test("the chunked file has several chunks, and fingerprinting the store leaves it as it was", async () => {
    expect(layout.chunks.length).toBeGreaterThanOrEqual(4);
    expect(chunks.slice(0, -1).every((chunk) => chunk.length === layout.chunkBytes + 16)).toBe(true);
    expect(chunks.at(-1)?.length).toBeLessThan(layout.chunkBytes + 16);
    expect(Buffer.concat([header, ...chunks]).equals(chunked)).toBe(true);
    expect(before.fileSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await fingerprint(src.store)).toEqual(before);
  });

  test("truncated at every chunk boundary: TRUNCATED", async () => {
    const cases: Case[] = [
      {
        label: "cut after the header",
        bytes: header,
        message: `${RESTORE_FAILED}the backup file ends after its header: it holds no chunk [TRUNCATED]`,
      },
    ];
    for (let k = 1; k < chunks.length; k++) {
      cases.push({
        label: `cut after chunk ${k - 1}`,
        bytes: Buffer.concat([header, ...chunks.slice(0, k)]),
        message: `${RESTORE_FAILED}the backup file ends after chunk ${k - 1}: its final chunk is missing [TRUNCATED]`,
      });
    }
    await expectRefused(cases);
  });

  test("truncated inside a chunk: CHUNK_INVALID; within the first 16 bytes of a chunk: TRUNCATED", async () => {
    const middle = layout.chunks[1] as { start: number; end: number };
    const last = chunks.length - 1;
    await expectRefused([
      {
        label: "cut inside chunk 1",
        bytes: chunked.subarray(0, middle.start + 100),
        message: `${RESTORE_FAILED}chunk 1, the last in the file, failed authentication: the file was cut short, extended or damaged [CHUNK_INVALID]`,
      },
      {
        label: "last byte cut off",
        bytes: chunked.subarray(0, chunked.length - 1),
        message: `${RESTORE_FAILED}chunk ${last}, the last in the file, failed authentication: the file was cut short, extended or damaged [CHUNK_INVALID]`,
      },
      {
        label: "cut 10 bytes into chunk 1",
        bytes: chunked.subarray(0, middle.start + 10),
        message: `${RESTORE_FAILED}the backup file ends inside chunk 1 [TRUNCATED]`,
      },
    ]);
  });

  test("truncated inside the header: TRUNCATED (refused before the target is even opened)", async () => {
    const message = expect.stringMatching(/^egide: \S+ cannot be restored: the backup file ends inside its header \[TRUNCATED\]$/);
    await expectRefused([
      { label: "cut in the fixed fields", bytes: header.subarray(0, 40), message },
      { label: "cut in the MAC", bytes: header.subarray(0, header.length - 1), message },
    ]);
  });

  test("appended bytes: after a short final chunk CHUNK_INVALID, after a full final chunk TRAILING_DATA", async () => {
    expect(backupLayout(oneFullChunk).chunks).toHaveLength(1);
    await expectRefused([
      {
        label: "one byte after a short final chunk",
        bytes: Buffer.concat([chunked, Buffer.from([0])]),
        message: `${RESTORE_FAILED}chunk ${chunks.length - 1}, the last in the file, failed authentication: the file was cut short, extended or damaged [CHUNK_INVALID]`,
      },
      {
        label: "one byte after a full final chunk",
        bytes: Buffer.concat([oneFullChunk, Buffer.from("x")]),
        message: `${RESTORE_FAILED}bytes follow the final chunk (0) of the backup file [TRAILING_DATA]`,
      },
    ]);
  });

  test("a flipped bit in the header: HEADER_TAMPERED in the MAC-covered fields, FOREIGN_INSTALLATION in the installation id, NOT_A_BACKUP in the magic, UNSUPPORTED_FORMAT in the version", async () => {
    const tampered = `${RESTORE_FAILED}the backup header failed authentication: it was altered [HEADER_TAMPERED]`;
    await expectRefused([
      { label: "creation time", bytes: flipBit(chunked, 20), message: tampered },
      { label: "salt", bytes: flipBit(chunked, 50), message: tampered },
      { label: "MAC", bytes: flipBit(chunked, layout.headerBytes - 1), message: tampered },
      {
        label: "installation id",
        bytes: flipBit(chunked, 30),
        message: `${RESTORE_FAILED}this backup belongs to another installation: it was made under a different master key (or its header was altered) [FOREIGN_INSTALLATION]`,
      },
      {
        label: "magic",
        bytes: flipBit(chunked, 0),
        message: expect.stringMatching(
          /^egide: \S+ cannot be restored: this is not an Egide backup file \(no EGIDEBAK header\) \[NOT_A_BACKUP\]$/,
        ),
      },
      {
        label: "version",
        bytes: flipBit(chunked, 8),
        message: expect.stringMatching(
          /^egide: \S+ cannot be restored: backup format version 0 is not supported \(this version reads 1\) \[UNSUPPORTED_FORMAT\]$/,
        ),
      },
      {
        label: "keyring record in the unseal section (the last byte of the section)",
        bytes: flipBit(chunked, layout.unsealAt + layout.unsealBytes - 1),
        message: expect.stringMatching(
          /^egide: (restore failed, nothing was changed|cannot unseal the backup's installation): .*(altered|damaged)/,
        ),
      },
    ]);
  });

  test("a flipped bit in a chunk or its tag, two chunks swapped, a middle chunk dropped: CHUNK_INVALID", async () => {
    const reordered = (index: number) =>
      `${RESTORE_FAILED}chunk ${index} failed authentication: the file was damaged, or its chunks were reordered or dropped [CHUNK_INVALID]`;
    await expectRefused([
      { label: "bit in chunk 2", bytes: flipBit(chunked, (layout.chunks[2]?.start as number) + 7), message: reordered(2) },
      {
        label: "bit in the final chunk's tag",
        bytes: flipBit(chunked, chunked.length - 3),
        message: `${RESTORE_FAILED}chunk ${chunks.length - 1}, the last in the file, failed authentication: the file was cut short, extended or damaged [CHUNK_INVALID]`,
      },
      {
        label: "chunks 0 and 1 swapped",
        bytes: Buffer.concat([header, chunks[1] as Buffer, chunks[0] as Buffer, ...chunks.slice(2)]),
        message: reordered(0),
      },
      { label: "chunk 1 dropped", bytes: Buffer.concat([header, chunks[0] as Buffer, ...chunks.slice(2)]), message: reordered(1) },
    ]);
  });

  test("a backup of ANOTHER installation is refused as such (with either installation's keys); a file that is not a backup, or empty: NOT_A_BACKUP", async () => {
    const other = ws.sqlite("other");
    const otherKeys = await initializeOffline(other);
    const file = ws.path("other.enc");
    const backup = await egide(["operator", "backup", "--config", other.config, "--output", file], { input: keysInput(otherKeys, 1) });
    expect(backup.code).toBe(0);
    const foreign = readFileSync(file);
    const another = `${RESTORE_FAILED}this backup belongs to another installation than the storage of ${src.store.config} (a different master key): restore it into a blank database or into the installation it came from [FOREIGN_INSTALLATION]`;
    const notABackup = expect.stringMatching(
      /^egide: \S+ cannot be restored: this is not an Egide backup file \(no EGIDEBAK header\) \[NOT_A_BACKUP\]$/,
    );
    await expectRefused([
      { label: "another installation, our keys", bytes: foreign, message: another },
      { label: "another installation, its keys", bytes: foreign, keys: [...otherKeys, ...otherKeys], message: another },
      {
        label: "a configuration file",
        bytes: Buffer.from('log_level = "silent"\n[storage]\ntype = "sqlite"\n'.repeat(20)),
        message: notABackup,
      },
      { label: "an empty file", bytes: Buffer.alloc(0), message: notABackup },
    ]);
  });

  test("a PostgreSQL target that holds data is unchanged too (a file cut inside a chunk, another installation's backup)", async () => {
    const pgSource = await source("postgresql");
    const target = pgSource.store;
    const pgBefore = await fingerprint(target);
    const online = readFileSync(pgSource.online);
    const file = ws.path("truncated-for-pg.enc");
    writeFileSync(file, online.subarray(0, backupLayout(online).headerBytes + 50));
    const [truncated, foreign] = await Promise.all([
      restore(file, target, pgSource.installation.keys),
      restore(src.offline, target, src.installation.keys),
    ]);
    expect(failure(truncated)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message: `${RESTORE_FAILED}chunk 0, the last in the file, failed authentication: the file was cut short, extended or damaged [CHUNK_INVALID]`,
    });
    expect(failure(foreign)).toMatchObject({
      code: 1,
      lines: 1,
      message: expect.stringContaining(
        "egide: restore failed, nothing was changed: this backup belongs to another installation than the storage of",
      ),
    });
    expect(await fingerprint(target)).toEqual(pgBefore);
  });
});

describe("refusals", () => {
  test("a target that holds records is refused without --force (TARGET_NOT_EMPTY) and unchanged", async () => {
    const src = await source("sqlite");
    const before = await fingerprint(src.store);
    const run = await restore(src.online, src.store, src.installation.keys, { force: false });
    expect(failure(run)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message:
        "egide: restore failed, nothing was changed: the target storage already holds records; a restore replaces everything in it (use --force to allow that) [TARGET_NOT_EMPTY]",
    });
    expect(await fingerprint(src.store)).toEqual(before);
  });

  test("wrong, malformed or too few unseal keys on stdin are refused with a clear message; the target is unchanged", async () => {
    const src = await source("sqlite");
    const other = ws.sqlite("wrong_keys");
    const wrong = await initializeOffline(other, { shares: 3, threshold: 2 });
    const before = await fingerprint(src.store);
    const wrongRun = await restore(src.offline, src.store, wrong);
    expect(failure(wrongRun)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message:
        "egide: cannot unseal the backup's installation: unseal failed: the shares do not open this installation (wrong unseal keys, or a damaged backup header)",
    });
    const mixed = await restore(src.offline, src.store, [src.installation.keys[0] as string, wrong[1] as string]);
    expect(failure(mixed).message).toBe(
      "egide: cannot unseal the backup's installation: unseal failed: the shares do not open this installation (wrong unseal keys, or a damaged backup header)",
    );
    const oneKey = await restore(src.offline, src.store, src.installation.keys, { threshold: 1 });
    expect(failure(oneKey)).toEqual({
      code: 1,
      stdout: "",
      lines: 1,
      message: "egide: the backup's installation needs 2 unseal key(s) on standard input, one per line; 1 given",
    });
    const malformed = await egide(["operator", "restore", "--input", src.offline, "--config", src.store.config, "--force"], {
      input: "not-a-key\n",
    });
    expect(failure(malformed)).toMatchObject({
      code: 1,
      stdout: "",
      lines: 1,
      message: expect.stringMatching(/^egide: cannot unseal the backup's installation: /),
    });
    expect(failure(malformed).message).not.toContain("not-a-key");
    expect(await fingerprint(src.store)).toEqual(before);
  });

  test("bad arguments are usage errors (exit 2); a missing input file is exit 1; a blank target is not created by a refused restore", async () => {
    const src = await source("sqlite");
    // Without --config the restore is online: with no server there, one line and exit 1.
    const noServer = await egide(["operator", "restore", "--input", src.offline, "--address", "http://127.0.0.1:9"]);
    expect(noServer).toEqual({ code: 1, stdout: "", stderr: "egide: cannot reach the server at http://127.0.0.1:9: connection refused\n" });
    const noInput = await egide(["operator", "restore", "--config", src.store.config]);
    expect(noInput.code).toBe(2);
    expect(noInput.stderr).toContain("--input");
    const blank = ws.sqlite("never_created");
    const missing = await egide(["operator", "restore", "--input", ws.path("missing.enc"), "--config", blank.config], {
      input: keysInput(src.installation.keys),
    });
    expect(failure(missing)).toMatchObject({
      code: 1,
      stdout: "",
      lines: 1,
      message: expect.stringMatching(/^egide: cannot read \S+missing\.enc: ENOENT$/),
    });
    expect(() => statSync(blank.sqlitePath as string)).toThrow();
  });
});
