import { existsSync, readFileSync } from "node:fs";
import { quoteIdentifier, withClient } from "@egide/test-postgres";
import type { TestServer } from "@egide/test-server";

/**
 * Every key and value of the server's storage as the server reads it (decrypted through the
 * barrier), one per line: where a test looks for a secret that must never be stored in clear.
 */
export async function decryptedStorageText(ts: TestServer): Promise<string> {
  const decrypted: string[] = [];
  for await (const entry of ts.server.context.storage.scan("")) decrypted.push(entry.key, Buffer.from(entry.value).toString("utf8"));
  return decrypted.join("\n");
}

/**
 * The database as stored: the SQLite file and its write-ahead log, or every key and value of
 * PostgreSQL's storage table and every audit row. Where a test looks for a secret that must not
 * reach the disk in any form.
 */
export async function databaseBytes(ts: TestServer, storage: "sqlite" | "postgresql"): Promise<Buffer> {
  if (storage === "sqlite") {
    const path = ts.sqlitePath as string;
    return Buffer.concat([path, `${path}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p)));
  }
  const { database, schema } = ts.postgres as { database: string; schema: string };
  return withClient(database, async (client) => {
    const s = quoteIdentifier(schema);
    const data = await client.query(`SELECT key, value FROM ${s}.egide_storage`);
    const log = await client.query(`SELECT * FROM ${s}.egide_audit_log`);
    return Buffer.concat([
      ...data.rows.flatMap((r: { key: string; value: Buffer }) => [Buffer.from(r.key), r.value]),
      Buffer.from(JSON.stringify(log.rows)),
    ]);
  });
}
