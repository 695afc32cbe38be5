import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServerConfig, startServer } from "../../src/index.js";
import type { RunningServer } from "../../src/index.js";
import { createTestDatabase } from "@egide/test-postgres";

/** A server for one test file: its URL, root token and shares, and how to stop it. */
export interface TestServer {
  server: RunningServer;
  url: string;
  rootToken: string;
  keys: Buffer[];
  /** The SQLite database file (SQLite storage only). */
  sqlitePath?: string;
  /** The PostgreSQL database and schema (PostgreSQL storage only), for a second instance or direct SQL. */
  postgres?: { database: string; schema: string };
  /** Stops the server and removes its storage (temp files, or the PostgreSQL database). */
  close(): Promise<void>;
}

/** Options of {@link startTestServer}. */
export interface TestServerOptions {
  storage?: "sqlite" | "postgresql";
  /** Extra TOML appended to the configuration. */
  extraToml?: string;
  /** Shares and threshold for init (default 1 of 1). */
  scheme?: { shares: number; threshold: number };
  /** Leave it uninitialised. */
  uninitialized?: boolean;
  /** Reuse this PostgreSQL database/schema (for a second instance). */
  postgres?: { database: string; schema: string };
  /** Use this SQLite file (kept by close(), for a restart on the same storage) instead of a temp one. */
  sqlitePath?: string;
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
 * Starts a real server on 127.0.0.1 (a free port, plain HTTP) over a SQLite file in a temp
 * directory or a fresh PostgreSQL database, initialises it and unseals it.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "egide-server-test-"));
  let storageToml: string;
  let dropDatabase: (() => Promise<void>) | undefined;
  let postgres: { database: string; schema: string } | undefined;
  if ((options.storage ?? "sqlite") === "sqlite") {
    storageToml = `[storage]\ntype = "sqlite"\n${options.storageToml ?? ""}\n[storage.sqlite]\npath = ${JSON.stringify(options.sqlitePath ?? join(dir, "egide.db"))}\n`;
  } else {
    let database = options.postgres?.database;
    if (!database) {
      const created = await createTestDatabase("server");
      database = created.name;
      dropDatabase = created.drop;
    }
    postgres = { database, schema: options.postgres?.schema ?? "egide" };
    const host = options.postgresHostPort?.host ?? (process.env.PGHOST || "127.0.0.1");
    const port = options.postgresHostPort?.port ?? Number(process.env.PGPORT || 5432);
    const user = process.env.PGUSER || "postgres";
    storageToml = `[storage]\ntype = "postgresql"\n${options.storageToml ?? ""}\n[storage.postgresql]\nhost = ${JSON.stringify(host)}\nport = ${port}\nusername = ${JSON.stringify(user)}\ndatabase = ${JSON.stringify(database)}\nschema = ${JSON.stringify(options.postgres?.schema ?? "egide")}\npool_max = 6\n${options.postgresToml ?? ""}\n`;
  }
  let server: RunningServer;
  try {
    const config = parseServerConfig(`log_level = "silent"\n${storageToml}[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n${options.listenerToml ?? ""}\n${options.extraToml ?? ""}`);
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
    ...((options.storage ?? "sqlite") === "sqlite" ? { sqlitePath: options.sqlitePath ?? join(dir, "egide.db") } : {}),
    ...(postgres ? { postgres } : {}),
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
      await dropDatabase?.();
    },
  };
}

/** A JSON request to the server; returns status, parsed body (or null) and headers. */
export async function call(
  url: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers["x-vault-token"] = options.token;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(`${url}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = null;
  if (text !== "") {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/**
 * Sends `request` (raw bytes: request line, headers, body, exactly as given) on a new TCP
 * connection and reads until the server closes it or `timeoutMs` passes. Returns the status of
 * the first response (0 when there was none), its body text and the whole raw answer. For
 * requests `fetch` would refuse or normalise (`..` segments, unknown methods, bad framing).
 */
export function rawHttp(url: string, request: string | Buffer, timeoutMs = 5000): Promise<{ status: number; body: string; raw: string; timedOut: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // A reset after the answer was read still counts as an answer.
      if (chunks.length === 0 && error.code !== "ECONNRESET") {
        clearTimeout(timer);
        reject(error);
      }
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString("latin1");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
      const split = raw.indexOf("\r\n\r\n");
      resolve({ status, body: split < 0 ? "" : raw.slice(split + 4), raw, timedOut });
    });
    socket.write(request);
  });
}
