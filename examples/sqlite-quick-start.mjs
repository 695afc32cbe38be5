#!/usr/bin/env node
// The quick start until the server lands: opens Egide's SQLite backend on a file, writes a few
// entries, lists them Vault-style, reads one back, records an audit row and reports health.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { SqliteBackend } from "@egide/storage-sqlite";

const dir = join(process.cwd(), ".egide-dev");
mkdirSync(dir, { recursive: true });
const backend = SqliteBackend.open({ path: join(dir, "egide.db") });
try {
  await backend.transaction(async (tx) => {
    await tx.put("secret/app/db", Buffer.from(JSON.stringify({ user: "app", password: "change-me" })));
    await tx.put("secret/app/api", Buffer.from(JSON.stringify({ key: "example" })));
    await tx.put("secret/other", Buffer.from("{}"));
  });
  console.log("list secret/      ->", await backend.list("secret/"));
  console.log("list secret/app/  ->", await backend.list("secret/app/"));
  console.log("get secret/app/db ->", `${(await backend.get("secret/app/db"))?.length} bytes`);
  await backend.audit.append({ operation: "read", path: "secret/app/db", success: true, sourceIp: "127.0.0.1" });
  console.log("audit rows        ->", (await backend.audit.query({ pathPrefix: "secret/" })).length);
  console.log("health            ->", await backend.health());
  console.log(`\nDatabase: ${backend.options.path} (WAL). The HTTP server arrives with a later release.`);
} finally {
  await backend.close();
}
