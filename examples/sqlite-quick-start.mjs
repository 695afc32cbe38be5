#!/usr/bin/env node
// The quick start until the server lands: Egide's SQLite backend on a file, behind the
// encrypting barrier. The first run initialises a 1-of-1 seal and keeps the unseal key in
// .egide-dev/unseal.key (mode 0600, dev only); later runs auto-unseal from it. It writes a few
// secrets, lists them Vault-style, reads one back, shows that the database holds only
// ciphertext, records an audit row and reports health.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { SqliteBackend } from "@egide/storage-sqlite";
import { SealManager, barrier, writeUnsealKeyFile } from "@egide/crypto-envelope";

const dir = join(process.cwd(), ".egide-dev");
mkdirSync(dir, { recursive: true });
const keyFile = join(dir, "unseal.key");
const raw = SqliteBackend.open({ path: join(dir, "egide.db") });
const seal = await SealManager.open(raw);
try {
  if (!seal.initialized) {
    const { shares } = await seal.initialize({ shares: 1, threshold: 1 });
    await writeUnsealKeyFile(keyFile, shares[0]);
    shares[0].fill(0);
    console.log(`initialised a 1-of-1 seal; dev unseal key written to ${keyFile}`);
  } else if (!existsSync(keyFile)) {
    throw new Error(`${join(dir, "egide.db")} is initialised but ${keyFile} is missing: delete .egide-dev/ to start over`);
  }
  await seal.autoUnseal({ file: keyFile });
  const storage = barrier(raw, seal);
  await storage.transaction(async (tx) => {
    await tx.put("secret/app/db", Buffer.from(JSON.stringify({ user: "app", password: "change-me" })));
    await tx.put("secret/app/api", Buffer.from(JSON.stringify({ key: "example" })));
    await tx.put("secret/other", Buffer.from("{}"));
  });
  console.log("list secret/      ->", await storage.list("secret/"));
  console.log("list secret/app/  ->", await storage.list("secret/app/"));
  console.log("get secret/app/db ->", (await storage.get("secret/app/db"))?.toString());
  const stored = await raw.get("secret/app/db");
  console.log("stored record     ->", `${stored?.length} bytes, plaintext visible: ${stored?.includes("change-me") ?? false}`);
  console.log("key status        ->", `term ${seal.keyStatus().term}`);
  await raw.audit.append({ operation: "read", path: "secret/app/db", success: true, sourceIp: "127.0.0.1" });
  console.log("audit rows        ->", (await raw.audit.query({ pathPrefix: "secret/" })).length);
  console.log("health            ->", await storage.health());
  console.log(`\nDatabase: ${raw.options.path} (WAL), encrypted. The HTTP server arrives with a later release.`);
} finally {
  seal.seal();
  await raw.close();
}
