import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * @typedef {object} CrashStorage
 * @property {"sqlite" | "postgresql"} type
 * @property {string} dir the temporary directory holding the configuration and the unseal key file
 * @property {string} configPath the server's TOML configuration: the same at every restart
 * @property {string} keyFile `[seal] unseal_key_file`, written by init (mode 0600)
 * @property {() => { ok: boolean, detail: string, ms: number } | null} integrityCheck
 *   SQLite: `PRAGMA integrity_check` on the file opened read-only (call it while no server runs);
 *   PostgreSQL: null (nothing comparable to run from outside)
 * @property {() => Promise<void>} cleanup removes the directory (and drops the PostgreSQL database)
 */

/**
 * Prepares the storage a crash loop runs on, and the server configuration that points at it:
 * a SQLite file in a temporary directory, or a fresh PostgreSQL database on the machine's server
 * (`createTestDatabase` of @egide/test-postgres: PGHOST / PGPORT / PGUSER, else 127.0.0.1:5432 as
 * postgres), schema "egide". Auto-unseal from a key file, so that each restart unseals itself.
 * Log level "warn": the log is kept only for error messages.
 *
 * @param {"sqlite" | "postgresql"} type
 * @returns {Promise<CrashStorage>}
 */
export async function prepareCrashStorage(type) {
  const dir = mkdtempSync(join(tmpdir(), `egide-crash-${type}-`));
  chmodSync(dir, 0o700);
  const keyFile = join(dir, "unseal.key");
  const listener = `[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n[seal]\nunseal_key_file = ${JSON.stringify(keyFile)}\n`;
  const configPath = join(dir, "egide.toml");
  if (type === "sqlite") {
    const file = join(dir, "egide.db");
    writeFileSync(
      configPath,
      `log_level = "warn"\n[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(file)}\n${listener}`,
    );
    const { default: Database } = await import("better-sqlite3");
    return {
      type,
      dir,
      configPath,
      keyFile,
      integrityCheck() {
        const started = performance.now();
        // Read-only: the check must not checkpoint or repair anything the restart would then see.
        const db = new Database(file, { readonly: true, fileMustExist: true });
        try {
          const rows = db.pragma("integrity_check").map((row) => row.integrity_check);
          return { ok: rows.length === 1 && rows[0] === "ok", detail: rows.slice(0, 10).join("; "), ms: performance.now() - started };
        } finally {
          db.close();
        }
      },
      async cleanup() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (type !== "postgresql") throw new Error(`unknown storage ${JSON.stringify(type)}: sqlite or postgresql`);
  const { createTestDatabase } = await import("@egide/test-postgres");
  const database = await createTestDatabase("crash_loop");
  const { host, port, username, password } = database.connection;
  // The password (if any) reaches the server through the environment, never the file.
  const passwordLine = password ? 'password_env = "PGPASSWORD"\n' : "";
  writeFileSync(
    configPath,
    `log_level = "warn"\n[storage]\ntype = "postgresql"\n[storage.postgresql]\nhost = ${JSON.stringify(host)}\nport = ${port}\nusername = ${JSON.stringify(username)}\ndatabase = ${JSON.stringify(database.name)}\nschema = "egide"\npool_max = 10\n${passwordLine}${listener}`,
  );
  return {
    type,
    dir,
    configPath,
    keyFile,
    integrityCheck: () => null,
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
      await database.drop();
    },
  };
}

/** Whether the key file is private to its owner (mode 0600), as init must write it. */
export function keyFileIsPrivate(keyFile) {
  return (statSync(keyFile).mode & 0o777) === 0o600;
}
