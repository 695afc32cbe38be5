import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { createTestDatabase, quoteIdentifier, randomSuffix, withClient } from "@egide/test-postgres";
import type { FastifyRequest } from "fastify";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { MountTable } from "../src/mounts/mount-table.js";
import type { SealRouteOptions } from "../src/routes/sys-seal-routes.js";
import { initializeInstallation } from "../src/seal/initialize-installation.js";
import { call, startTestServer } from "@egide/test-server";
import type { TestServer } from "@egide/test-server";

// sys/init commits the seal configuration, the keys, the root token, the default mount and its
// audit row in one transaction, or leaves the installation uninitialised and sealed so init can
// be retried; the auto-unseal key file is written only after the commit. Faults are injected in
// the real databases: a trigger that refuses the audit row (SQLite and PostgreSQL), a role
// without INSERT on the audit table, and a connection killed in the middle (PostgreSQL).
//
// Each fault runs twice: through initializeInstallation itself (with a request object as the
// route passes it), and through HTTP PUT /v1/sys/init. The HTTP tests pass once the sys/init
// route calls src/seal/initialize-installation.ts.

type Kind = "sqlite" | "postgresql";
type Path = "direct" | "http";

const dirs: string[] = [];
const servers: TestServer[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close().catch(() => undefined);
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** An uninitialised server with auto-unseal from a key file in a directory of its own. */
async function autoUnsealServer(
  kind: Kind,
  extra: Parameters<typeof startTestServer>[0] = {},
): Promise<{ server: TestServer; keyFile: string; keyDir: string }> {
  const keyDir = mkdtempSync(join(tmpdir(), "egide-init-atomic-"));
  dirs.push(keyDir);
  const keyFile = join(keyDir, "unseal.key");
  const server = await startTestServer({
    storage: kind,
    uninitialized: true,
    extraToml: `[seal]\nunseal_key_file = ${JSON.stringify(keyFile)}\n`,
    ...extra,
  });
  servers.push(server);
  return { server, keyFile, keyDir };
}

/** A plain uninitialised server (no auto-unseal). */
async function plainServer(kind: Kind): Promise<TestServer> {
  const server = await startTestServer({ storage: kind, uninitialized: true });
  servers.push(server);
  return server;
}

/** What the seal routes get from start-server, built again over the server's own storage. */
function sealOptions(server: TestServer, keyFile: string | undefined): SealRouteOptions {
  const context = server.server.context;
  return {
    tokens: context.tokens,
    mounts: new MountTable(context.storage),
    autoUnseal: keyFile === undefined ? undefined : { file: keyFile },
    startedAt: new Date(),
  };
}

/** A request as the sys/init route hands it over (what auditEntry and the logger read). */
function initRequest(): FastifyRequest {
  const state = {
    operation: "update",
    path: "sys/init",
    method: "PUT",
    caller: undefined,
    session: undefined,
    audited: false,
    skipAudit: false,
  };
  return {
    id: randomUUID(),
    ip: "127.0.0.1",
    method: "PUT",
    url: "/v1/sys/init",
    headers: {},
    egide: state,
    log: { error: () => undefined, warn: () => undefined, info: () => undefined },
  } as unknown as FastifyRequest;
}

type InitOutcome = { ok: true; key: Buffer; rootToken: string; request?: FastifyRequest } | { ok: false; error: unknown };

/** Initialises 1-of-1 (auto-unseal) either by calling initializeInstallation or over HTTP. */
async function init(path: Path, server: TestServer, keyFile: string | undefined): Promise<InitOutcome> {
  if (path === "direct") {
    const request = initRequest();
    try {
      const { keys, rootToken } = await initializeInstallation(server.server.context, sealOptions(server, keyFile), request, {
        shares: 1,
        threshold: 1,
      });
      return { ok: true, key: keys[0] as Buffer, rootToken, request };
    } catch (error) {
      return { ok: false, error };
    }
  }
  const reply = await call(server.url, "PUT", "/v1/sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
  if (reply.status !== 200) return { ok: false, error: reply };
  return { ok: true, key: Buffer.from(reply.body.keys_base64[0], "base64"), rootToken: reply.body.root_token };
}

/** The keys of the raw storage table, read with SQL. */
async function storedKeys(server: TestServer): Promise<string[]> {
  if (server.sqlitePath) {
    const db = new Database(server.sqlitePath, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT key FROM egide_storage ORDER BY key").all() as Array<{ key: string }>).map((row) => row.key);
    } finally {
      db.close();
    }
  }
  const { database, schema } = server.postgres as { database: string; schema: string };
  return withClient(database, async (client) =>
    (await client.query<{ key: string }>(`SELECT key FROM ${quoteIdentifier(schema)}.egide_storage ORDER BY key`)).rows.map(
      (row) => row.key,
    ),
  );
}

/** Successful `update sys/init` rows of the audit table, read with SQL. */
async function initAuditRows(server: TestServer): Promise<number> {
  if (server.sqlitePath) {
    const db = new Database(server.sqlitePath, { readonly: true, fileMustExist: true });
    try {
      return (
        db.prepare("SELECT count(*) AS n FROM egide_audit_log WHERE path = 'sys/init' AND operation = 'update' AND success = 1").get() as {
          n: number;
        }
      ).n;
    } finally {
      db.close();
    }
  }
  const { database, schema } = server.postgres as { database: string; schema: string };
  return withClient(database, async (client) =>
    Number(
      (
        await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${quoteIdentifier(schema)}.egide_audit_log WHERE path = 'sys/init' AND operation = 'update' AND success`,
        )
      ).rows[0]?.n,
    ),
  );
}

/** Runs SQL on the server's database (SQLite file or PostgreSQL database) from outside. */
async function sql(server: TestServer, statements: string): Promise<void> {
  if (server.sqlitePath) {
    const db = new Database(server.sqlitePath, { fileMustExist: true });
    try {
      db.exec(statements);
    } finally {
      db.close();
    }
    return;
  }
  const { database } = server.postgres as { database: string };
  await withClient(database, (client) => client.query(statements));
}

/** A trigger that refuses every audit row. */
async function refuseAuditRows(server: TestServer): Promise<() => Promise<void>> {
  if (server.sqlitePath) {
    await sql(server, "CREATE TRIGGER refuse_audit BEFORE INSERT ON egide_audit_log BEGIN SELECT RAISE(ABORT, 'injected'); END;");
    return () => sql(server, "DROP TRIGGER refuse_audit;");
  }
  const s = quoteIdentifier((server.postgres as { schema: string }).schema);
  await sql(
    server,
    `CREATE FUNCTION ${s}.refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$;
     CREATE TRIGGER refuse_audit BEFORE INSERT ON ${s}.egide_audit_log FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_audit();`,
  );
  return () => sql(server, `DROP TRIGGER refuse_audit ON ${s}.egide_audit_log; DROP FUNCTION ${s}.refuse_audit();`);
}

/** After a failed init: uninitialised and sealed everywhere, nothing stored, no key file. */
async function expectNothingInitialised(server: TestServer, keyFile: string | undefined, keyDir: string | undefined): Promise<void> {
  expect(server.server.context.seal.status()).toMatchObject({ initialized: false, sealed: true, progress: 0, nonce: "" });
  const initialized = await call(server.url, "GET", "/v1/sys/init");
  expect(initialized.status, JSON.stringify(initialized.body)).toBe(200);
  expect(initialized.body).toEqual({ initialized: false });
  const status = await call(server.url, "GET", "/v1/sys/seal-status");
  expect(status.body).toMatchObject({ initialized: false, sealed: true, progress: 0 });
  // No seal configuration, root key, keyring, token or mount record; no audit row of an init.
  expect(await storedKeys(server)).toEqual([]);
  expect(await initAuditRows(server)).toBe(0);
  if (keyFile !== undefined) expect(existsSync(keyFile)).toBe(false);
  if (keyDir !== undefined) expect(readdirSync(keyDir)).toEqual([]);
}

/** After a successful init with auto-unseal: unsealed, the key file written, the root token and `secret/` working. */
async function expectInitialised(server: TestServer, outcome: InitOutcome, keyFile: string): Promise<void> {
  expect(outcome.ok, outcome.ok ? "" : String((outcome as { error: unknown }).error)).toBe(true);
  if (!outcome.ok) return;
  if (outcome.request) expect(outcome.request.egide.audited).toBe(true);
  expect(statSync(keyFile).mode & 0o777).toBe(0o600);
  expect(readFileSync(keyFile, "utf8")).toBe(`${outcome.key.toString("base64")}\n`);
  expect(readdirSync(join(keyFile, ".."))).toEqual(["unseal.key"]);
  expect(server.server.context.seal.status()).toMatchObject({ initialized: true, sealed: false, progress: 0 });
  expect((await call(server.url, "GET", "/v1/sys/init")).body).toEqual({ initialized: true });
  expect(await initAuditRows(server)).toBe(1);
  const keys = await storedKeys(server);
  expect(keys).toEqual(expect.arrayContaining([".egide/seal-config", ".egide/root-key", ".egide/keyring", "core/mounts"]));
  expect(keys.filter((key) => key.startsWith("sys/token/id/"))).toHaveLength(1);
  const entry = await server.server.context.tokens.lookup(outcome.rootToken);
  expect(entry?.policies).toEqual(["root"]);
  const self = await call(server.url, "GET", "/v1/auth/token/lookup-self", { token: outcome.rootToken });
  expect(self.status, JSON.stringify(self.body)).toBe(200);
  expect(self.body.data.policies).toEqual(["root"]);
  const write = await call(server.url, "POST", "/v1/secret/data/app", { token: outcome.rootToken, body: { data: { a: "1" } } });
  expect(write.status, JSON.stringify(write.body)).toBe(200);
  expect((await call(server.url, "GET", "/v1/secret/data/app", { token: outcome.rootToken })).body.data.data).toEqual({ a: "1" });
}

const PATHS: Path[] = ["direct", "http"];

describe.each(["sqlite", "postgresql"] as Kind[])("sys/init on %s", (kind) => {
  test.each(PATHS)(
    "(a) %s: an audit row refused by a trigger leaves nothing initialised; once it is gone a retry succeeds",
    async (path) => {
      const { server, keyFile, keyDir } = await autoUnsealServer(kind);
      const removeTrigger = await refuseAuditRows(server);
      const failed = await init(path, server, keyFile);
      expect(failed.ok).toBe(false);
      if (path === "http") expect((failed as { error: { status: number } }).error.status).toBeGreaterThanOrEqual(500);
      // While the trigger is there every audited request fails; the state is checked in memory.
      expect(server.server.context.seal.status()).toMatchObject({ initialized: false, sealed: true });
      expect(await storedKeys(server)).toEqual([]);
      await removeTrigger();
      await expectNothingInitialised(server, keyFile, keyDir);
      await expectInitialised(server, await init(path, server, keyFile), keyFile);
    },
  );

  test("in-process init (no request): a refused mount write leaves nothing; a retry with unseal serves at once without unseal progress", async () => {
    const server = await plainServer(kind);
    const context = server.server.context;
    const options = sealOptions(server, undefined);
    if (server.sqlitePath) {
      await sql(
        server,
        "CREATE TRIGGER refuse_mounts BEFORE INSERT ON egide_storage WHEN NEW.key = 'core/mounts' BEGIN SELECT RAISE(ABORT, 'injected'); END;",
      );
    } else {
      const s = quoteIdentifier((server.postgres as { schema: string }).schema);
      await sql(
        server,
        `CREATE FUNCTION ${s}.refuse_mounts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$;
         CREATE TRIGGER refuse_mounts BEFORE INSERT ON ${s}.egide_storage FOR EACH ROW WHEN (NEW.key = 'core/mounts') EXECUTE FUNCTION ${s}.refuse_mounts();`,
      );
    }
    await expect(initializeInstallation(context, options, undefined, { shares: 3, threshold: 2 }, { unseal: true })).rejects.toThrow();
    await expectNothingInitialised(server, undefined, undefined);

    await sql(
      server,
      server.sqlitePath
        ? "DROP TRIGGER refuse_mounts;"
        : `DROP TRIGGER refuse_mounts ON ${quoteIdentifier((server.postgres as { schema: string }).schema)}.egide_storage;`,
    );
    const { keys, rootToken } = await initializeInstallation(context, options, undefined, { shares: 3, threshold: 2 }, { unseal: true });
    expect(keys).toHaveLength(3);
    // Unsealed by the initialisation itself: no share went through the unseal progress.
    expect(context.seal.status()).toMatchObject({ initialized: true, sealed: false, t: 2, n: 3, progress: 0, nonce: "" });
    expect(await initAuditRows(server)).toBe(0);
    expect((await context.tokens.lookup(rootToken))?.policies).toEqual(["root"]);
    expect((await options.mounts.list()).map((mount) => mount.path)).toEqual(["secret/"]);
    const write = await call(server.url, "POST", "/v1/secret/data/app", { token: rootToken, body: { data: { a: "1" } } });
    expect(write.status, JSON.stringify(write.body)).toBe(200);

    // Without unseal it stays sealed, and the shares unseal it.
    const other = await plainServer(kind);
    const sealed = await initializeInstallation(other.server.context, sealOptions(other, undefined), undefined, {
      shares: 3,
      threshold: 2,
    });
    expect(other.server.context.seal.status()).toMatchObject({ initialized: true, sealed: true, progress: 0 });
    for (const key of sealed.keys.slice(1)) await other.server.context.seal.unseal(key);
    expect((await other.server.context.tokens.lookup(sealed.rootToken))?.policies).toEqual(["root"]);
  });

  test("an auto-unseal key file that already exists refuses init before anything is stored, and is left alone", async () => {
    const { server, keyFile, keyDir } = await autoUnsealServer(kind);
    await import("node:fs/promises").then((fs) => fs.writeFile(keyFile, "earlier key\n", { mode: 0o600 }));
    const outcome = await init("direct", server, keyFile);
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: { code?: string } }).error.code).toBe("UNSEAL_KEY_SOURCE");
    expect(readFileSync(keyFile, "utf8")).toBe("earlier key\n");
    rmSync(keyFile);
    await expectNothingInitialised(server, keyFile, keyDir);
    await expectInitialised(server, await init("direct", server, keyFile), keyFile);
  });

  test("a key file that cannot be written after the commit: the keys are answered with a warning, the server seals, the key unseals it", async () => {
    const { server, keyFile, keyDir } = await autoUnsealServer(kind);
    const context = server.server.context;
    const options = sealOptions(server, keyFile);
    const mounts = options.mounts;
    // Something takes the key file's name while the initialisation runs (after the check that
    // it is free, before the commit): here a directory, created from inside the transaction.
    const racing = Object.create(mounts) as MountTable;
    racing.ensureDefaultIn = async (tx) => {
      mkdirSync(keyFile, { recursive: true });
      return mounts.ensureDefaultIn(tx);
    };
    racing.invalidate = () => mounts.invalidate();
    const request = initRequest();
    const result = await initializeInstallation(context, { ...options, mounts: racing }, request, { shares: 1, threshold: 1 });
    expect(result.keys).toHaveLength(1);
    expect(result.keys[0]?.length).toBe(32);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toContain(keyFile);
    expect(result.warnings[0]).toContain("EEXIST");
    expect(result.warnings[0]).not.toContain((result.keys[0] as Buffer).toString("base64"));
    expect(request.egide.audited).toBe(true);
    // Initialised and committed (with its audit row), but sealed until someone uses the key.
    expect(context.seal.status()).toMatchObject({ initialized: true, sealed: true, progress: 0 });
    expect((await call(server.url, "GET", "/v1/sys/init")).body).toEqual({ initialized: true });
    expect(await initAuditRows(server)).toBe(1);
    expect(readdirSync(keyDir)).toEqual(["unseal.key"]);
    expect(statSync(keyFile).isDirectory()).toBe(true);
    await context.seal.unseal(result.keys[0] as Buffer);
    expect(context.seal.sealed).toBe(false);
    expect((await context.tokens.lookup(result.rootToken))?.policies).toEqual(["root"]);
    expect((await mounts.list()).map((mount) => mount.path)).toEqual(["secret/"]);
  });
});

describe("sys/init on postgresql: a role without INSERT on the audit table, a connection killed mid-init", () => {
  test.each(PATHS)(
    "(b) %s: the server's role lost INSERT on the audit table: nothing initialised; once granted a retry succeeds",
    async (path) => {
      const role = `egide_t_init_role_${randomSuffix()}`;
      const database = await createTestDatabase("init_role");
      cleanups.push(() => withClient("postgres", (client) => client.query(`DROP ROLE IF EXISTS ${quoteIdentifier(role)}`)));
      cleanups.push(() => database.drop());
      await withClient("postgres", async (client) => {
        await client.query(`CREATE ROLE ${quoteIdentifier(role)} LOGIN NOSUPERUSER`);
        await client.query(`GRANT CONNECT, CREATE ON DATABASE ${quoteIdentifier(database.name)} TO ${quoteIdentifier(role)}`);
      });
      // The server connects as that role (it creates, and owns, its schema).
      const previousUser = process.env.PGUSER;
      process.env.PGUSER = role;
      let started: { server: TestServer; keyFile: string; keyDir: string };
      try {
        started = await autoUnsealServer("postgresql", { postgres: { database: database.name, schema: "egide" } });
      } finally {
        if (previousUser === undefined) delete process.env.PGUSER;
        else process.env.PGUSER = previousUser;
      }
      const { server, keyFile, keyDir } = started;
      const table = `${quoteIdentifier("egide")}.egide_audit_log`;
      const isSuper = await withClient(
        database.name,
        async (client) => (await client.query(`SELECT rolsuper FROM pg_roles WHERE rolname = $1`, [role])).rows[0]?.rolsuper,
      );
      expect(isSuper).toBe(false);
      await withClient(database.name, (client) => client.query(`REVOKE INSERT ON ${table} FROM ${quoteIdentifier(role)}`));

      const failed = await init(path, server, keyFile);
      expect(failed.ok).toBe(false);
      if (path === "direct") expect(String((failed as { error: Error }).error.message)).toMatch(/permission denied/);
      expect(server.server.context.seal.status()).toMatchObject({ initialized: false, sealed: true });
      expect(await storedKeys(server)).toEqual([]);

      await withClient(database.name, (client) => client.query(`GRANT INSERT ON ${table} TO ${quoteIdentifier(role)}`));
      await expectNothingInitialised(server, keyFile, keyDir);
      await expectInitialised(server, await init(path, server, keyFile), keyFile);
    },
  );

  test.each(PATHS)("(c) %s: the connection killed while init writes its audit row: nothing initialised; a retry succeeds", async (path) => {
    const { server, keyFile, keyDir } = await autoUnsealServer("postgresql");
    const { database, schema } = server.postgres as { database: string; schema: string };
    const s = quoteIdentifier(schema);
    await sql(
      server,
      `CREATE FUNCTION ${s}.stall_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$;
       CREATE TRIGGER stall_audit BEFORE INSERT ON ${s}.egide_audit_log FOR EACH ROW EXECUTE FUNCTION ${s}.stall_audit();`,
    );
    let settled = false;
    const running = init(path, server, keyFile).finally(() => {
      settled = true;
    });
    // Kill every backend that sleeps in the trigger until init gives up: the storage retries a
    // transaction once after a lost connection, so there are usually two.
    let killed = 0;
    const started = Date.now();
    while (!settled && Date.now() - started < 20_000) {
      killed += await withClient(database, async (client) => {
        const result = await client.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()",
          [database],
        );
        return result.rowCount ?? 0;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const failed = await running;
    expect(killed).toBeGreaterThanOrEqual(1);
    expect(failed.ok).toBe(false);
    expect(server.server.context.seal.status()).toMatchObject({ initialized: false, sealed: true });
    expect(await storedKeys(server)).toEqual([]);

    await sql(server, `DROP TRIGGER stall_audit ON ${s}.egide_audit_log; DROP FUNCTION ${s}.stall_audit();`);
    await expectNothingInitialised(server, keyFile, keyDir);
    await expectInitialised(server, await init(path, server, keyFile), keyFile);
  });
});
