import type { RunningServer } from "@egide/server";
import { startTestServer } from "./start-test-server.js";

/** A real Egide server for one CLI test file, with what the `egide` command needs to reach it. */
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
 * {@link startTestServer} as the CLI tests use it: SQLite in a temp directory, or a fresh
 * PostgreSQL database (schema "public", dropped by close()); the shares in base64 and an
 * environment (`EGIDE_ADDR`, `EGIDE_TOKEN`) for the `egide` command.
 */
export async function startCliTestServer(options: CliTestServerOptions = {}): Promise<CliTestServer> {
  const started = await startTestServer({
    label: "cli",
    schema: "public",
    ...(options.storage === undefined ? {} : { storage: options.storage }),
    ...(options.uninitialized === undefined ? {} : { uninitialized: options.uninitialized }),
    ...(options.scheme === undefined ? {} : { scheme: options.scheme }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
  });
  const { server, url, rootToken, dir, caFile } = started;
  return {
    server,
    url,
    rootToken,
    keys: started.keys.map((key) => key.toString("base64")),
    dir,
    ...(caFile === undefined ? {} : { caFile }),
    env: { EGIDE_ADDR: url, ...(rootToken === "" ? {} : { EGIDE_TOKEN: rootToken }) },
    close: () => started.close(),
  };
}
