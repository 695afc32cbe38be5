import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServerConfig, startServer } from "@egide/server";
import type { RunningServer } from "@egide/server";
import { createTestDatabase } from "@egide/test-postgres";

/** A real Egide server for one test file. */
export interface CliTestServer {
  server: RunningServer;
  url: string;
  /** The root token ("" when left uninitialised). */
  rootToken: string;
  /** The unseal key shares, base64 (empty when left uninitialised). */
  keys: string[];
  /** The CA (here: the self-signed certificate) of a TLS server. */
  caFile?: string;
  /** A scratch directory removed by close(). */
  dir: string;
  /** Environment pointing the CLI at this server with the root token. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Options of {@link startCliTestServer}. */
export interface CliTestServerOptions {
  storage?: "sqlite" | "postgresql";
  /** Leave it uninitialised (for `operator init`). */
  uninitialized?: boolean;
  /** Shares and threshold of the initialisation (default 1 of 1). */
  scheme?: { shares: number; threshold: number };
  /** Serve HTTPS with a throwaway self-signed certificate for 127.0.0.1. */
  tls?: boolean;
}

/**
 * Starts a real server in the test process on 127.0.0.1 (a free port): SQLite in a temp
 * directory, or a fresh PostgreSQL database (dropped by close(); PostgreSQL missing is a
 * failure, never a skip). Initialised and unsealed unless `uninitialized`.
 */
export async function startCliTestServer(options: CliTestServerOptions = {}): Promise<CliTestServer> {
  const dir = mkdtempSync(join(tmpdir(), "egide-cli-test-"));
  let drop: (() => Promise<void>) | undefined;
  let storage: string;
  if ((options.storage ?? "sqlite") === "sqlite") {
    storage = `[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(join(dir, "egide.db"))}\n`;
  } else {
    const database = await createTestDatabase("cli");
    drop = database.drop;
    const { host, port, username } = database.connection;
    storage = `[storage]\ntype = "postgresql"\n[storage.postgresql]\nhost = ${JSON.stringify(host)}\nport = ${port}\nusername = ${JSON.stringify(username)}\ndatabase = ${JSON.stringify(database.name)}\npool_max = 6\n`;
  }
  let listener = `[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`;
  let caFile: string | undefined;
  if (options.tls) {
    const cert = join(dir, "tls.crt");
    const key = join(dir, "tls.key");
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
      { stdio: "ignore" },
    );
    listener = `[listener]\naddress = "127.0.0.1:0"\ntls_cert_file = ${JSON.stringify(cert)}\ntls_key_file = ${JSON.stringify(key)}\n`;
    caFile = cert;
  }
  let server: RunningServer;
  try {
    server = await startServer({ config: parseServerConfig(`log_level = "silent"\n${storage}${listener}`) });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    await drop?.();
    throw error;
  }
  let rootToken = "";
  let keys: string[] = [];
  if (!options.uninitialized) {
    const result = await server.initialize(options.scheme ?? { shares: 1, threshold: 1 }, true);
    rootToken = result.rootToken;
    keys = result.keys.map((key) => key.toString("base64"));
  }
  return {
    server,
    url: server.url,
    rootToken,
    keys,
    dir,
    ...(caFile === undefined ? {} : { caFile }),
    env: { EGIDE_ADDR: server.url, ...(rootToken === "" ? {} : { EGIDE_TOKEN: rootToken }) },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
      await drop?.();
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (bound, then closed). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** A JSON request straight to the server (to check its state after a command), with the given token. */
export async function api(server: CliTestServer, method: string, path: string, body?: unknown, token = server.rootToken): Promise<{ status: number; body: any }> {
  const response = await fetch(`${server.url}/v1/${path}`, {
    method,
    headers: { "x-vault-token": token, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}
