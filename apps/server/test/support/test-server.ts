import { mkdtempSync, rmSync } from "node:fs";
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
}

/**
 * Starts a real server on 127.0.0.1 (a free port, plain HTTP) over a SQLite file in a temp
 * directory or a fresh PostgreSQL database, initialises it and unseals it.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "egide-server-test-"));
  let storageToml: string;
  let dropDatabase: (() => Promise<void>) | undefined;
  if ((options.storage ?? "sqlite") === "sqlite") {
    storageToml = `[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(join(dir, "egide.db"))}\n`;
  } else {
    let database = options.postgres?.database;
    if (!database) {
      const created = await createTestDatabase("server");
      database = created.name;
      dropDatabase = created.drop;
    }
    const host = process.env.PGHOST || "127.0.0.1";
    const port = Number(process.env.PGPORT || 5432);
    const user = process.env.PGUSER || "postgres";
    storageToml = `[storage]\ntype = "postgresql"\n[storage.postgresql]\nhost = ${JSON.stringify(host)}\nport = ${port}\nusername = ${JSON.stringify(user)}\ndatabase = ${JSON.stringify(database)}\nschema = ${JSON.stringify(options.postgres?.schema ?? "egide")}\npool_max = 6\n`;
  }
  const config = parseServerConfig(`log_level = "silent"\n${storageToml}[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n${options.extraToml ?? ""}`);
  let server: RunningServer;
  try {
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
