import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServerConfig, startServer } from "@egide/server";
import type { RunningServer } from "@egide/server";
import { createTestDatabase } from "@egide/test-postgres";
import { selfSignedCertificate } from "./self-signed-certificate.js";

/** A server for one test file: its URL, root token and shares, and how to stop it. */
export interface TestServer {
  server: RunningServer;
  url: string;
  /** The root token ("" when left uninitialised or started on a reused database). */
  rootToken: string;
  /** The unseal key shares (empty when left uninitialised or started on a reused database). */
  keys: Buffer[];
  /** A scratch directory for the test's files, removed by close(). */
  dir: string;
  /** The CA (here: the self-signed certificate) of a TLS server. */
  caFile?: string;
  /** The SQLite database file (SQLite storage only). */
  sqlitePath?: string;
  /** The PostgreSQL database and schema (PostgreSQL storage only), for a second instance or direct SQL. */
  postgres?: { database: string; schema: string };
  /** Stops the server and removes its storage (temp files, or the PostgreSQL database it created). */
  close(): Promise<void>;
}

/** Options of {@link startTestServer}. */
export interface TestServerOptions {
  storage?: "sqlite" | "postgresql";
  /** Names the temp directory (`egide-<label>-test-…`) and the PostgreSQL database (default "server"). */
  label?: string;
  /** Extra TOML appended to the configuration. */
  extraToml?: string;
  /** Shares and threshold for init (default 1 of 1). */
  scheme?: { shares: number; threshold: number };
  /** Leave it uninitialised. */
  uninitialized?: boolean;
  /** Reuse this PostgreSQL database/schema (for a second instance); it is neither initialised nor dropped. */
  postgres?: { database: string; schema: string };
  /** The PostgreSQL schema of a fresh database (default "egide"). */
  schema?: string;
  /** Use this SQLite file (kept by close(), for a restart on the same storage) instead of a temp one. */
  sqlitePath?: string;
  /** Serve HTTPS with a throwaway self-signed certificate for 127.0.0.1 (see {@link TestServer.caFile}). */
  tls?: boolean;
  /** Extra keys of the `[listener]` table (for example `max_request_size = 4096`). */
  listenerToml?: string;
  /** Extra keys of the `[storage]` table (for example `health_interval = "200ms"`). */
  storageToml?: string;
  /** Extra keys of the `[storage.postgresql]` table (for example `operation_timeout = "1s"`). */
  postgresToml?: string;
  /** Connect to PostgreSQL here (a TcpProxy in front of it) instead of PGHOST/PGPORT. */
  postgresHostPort?: { host: string; port: number };
}

/**
 * Starts a real server in the test process on 127.0.0.1 (a free port; plain HTTP unless `tls`)
 * over a SQLite file in a temp directory or a fresh PostgreSQL database (PostgreSQL missing is a
 * failure, never a skip), initialises it and unseals it.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const label = options.label ?? "server";
  const dir = mkdtempSync(join(tmpdir(), `egide-${label}-test-`));
  let storageToml: string;
  let dropDatabase: (() => Promise<void>) | undefined;
  let postgres: { database: string; schema: string } | undefined;
  const sqlitePath = options.sqlitePath ?? join(dir, "egide.db");
  if ((options.storage ?? "sqlite") === "sqlite") {
    storageToml = `[storage]\ntype = "sqlite"\n${options.storageToml ?? ""}\n[storage.sqlite]\npath = ${JSON.stringify(sqlitePath)}\n`;
  } else {
    let database = options.postgres?.database;
    if (!database) {
      try {
        const created = await createTestDatabase(label);
        database = created.name;
        dropDatabase = created.drop;
      } catch (error) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
    const schema = options.postgres?.schema ?? options.schema ?? "egide";
    postgres = { database, schema };
    // Read at each start, not once: a test may point PGUSER at a restricted role for one server.
    const host = options.postgresHostPort?.host ?? (process.env.PGHOST || "127.0.0.1");
    const port = options.postgresHostPort?.port ?? Number(process.env.PGPORT || 5432);
    const user = process.env.PGUSER || "postgres";
    storageToml = `[storage]\ntype = "postgresql"\n${options.storageToml ?? ""}\n[storage.postgresql]\nhost = ${JSON.stringify(host)}\nport = ${port}\nusername = ${JSON.stringify(user)}\ndatabase = ${JSON.stringify(database)}\nschema = ${JSON.stringify(schema)}\npool_max = 6\n${options.postgresToml ?? ""}\n`;
  }
  let server: RunningServer;
  let caFile: string | undefined;
  try {
    let listenerToml = `[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`;
    if (options.tls) {
      const certificate = selfSignedCertificate(dir);
      listenerToml = `[listener]\naddress = "127.0.0.1:0"\ntls_cert_file = ${JSON.stringify(certificate.certFile)}\ntls_key_file = ${JSON.stringify(certificate.keyFile)}\n`;
      caFile = certificate.certFile;
    }
    const config = parseServerConfig(
      `log_level = "silent"\n${storageToml}${listenerToml}${options.listenerToml ?? ""}\n${options.extraToml ?? ""}`,
    );
    server = await startServer({ config });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    await dropDatabase?.();
    throw error;
  }
  let keys: Buffer[] = [];
  let rootToken = "";
  if (!options.uninitialized && !options.postgres) {
    const scheme = options.scheme ?? { shares: 1, threshold: 1 };
    ({ keys, rootToken } = await server.initialize(scheme, true));
  }
  return {
    server,
    url: server.url,
    rootToken,
    keys,
    dir,
    ...(caFile === undefined ? {} : { caFile }),
    ...((options.storage ?? "sqlite") === "sqlite" ? { sqlitePath } : {}),
    ...(postgres ? { postgres } : {}),
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
      await dropDatabase?.();
    },
  };
}
