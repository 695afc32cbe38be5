import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServerConfig } from "./config/parse-server-config.js";
import { startServer } from "./start-server.js";
import type { RunningServer } from "./start-server.js";

/** What {@link startDevServer} returns: the server and the secrets dev mode prints. */
export interface DevServer extends RunningServer {
  rootToken: string;
  /** The unseal key (the single share of a 1-of-1 seal), base64. */
  unsealKey: string;
}

/**
 * Dev mode: SQLite in a fresh temporary directory (deleted on close), initialised 1-of-1,
 * unsealed, `secret/` mounted as KV v2, listening on 127.0.0.1:8200 over plain HTTP. Never
 * for production: the unseal key and root token are printed, and the data is thrown away.
 */
export async function startDevServer(options: { address?: string; logLevel?: string } = {}): Promise<DevServer> {
  const dir = mkdtempSync(join(tmpdir(), "egide-dev-"));
  const config = parseServerConfig(`
log_level = ${JSON.stringify(options.logLevel ?? "warn")}
[storage]
type = "sqlite"
[storage.sqlite]
path = ${JSON.stringify(join(dir, "egide.db"))}
[listener]
address = ${JSON.stringify(options.address ?? "127.0.0.1:8200")}
tls_disable = true
`);
  let server: RunningServer;
  try {
    server = await startServer({ config });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const { keys, rootToken } = await server.initialize({ shares: 1, threshold: 1 }, true);
  const unsealKey = keys[0]?.toString("base64") ?? "";
  for (const key of keys) key.fill(0);
  const close = server.close;
  return Object.assign(server, {
    rootToken,
    unsealKey,
    async close() {
      await close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
