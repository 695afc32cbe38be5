import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, beforeEach, expect, test } from "vitest";
import { AuditBatcher } from "../src/audit/audit-batcher.js";

// Group commit of audit rows, on a real SQLite file: every row committed exactly once, each
// caller told about its own row, a bad row failing alone, an unwritable log failing everyone.

let dir: string;
let backend: SqliteBackend;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "egide-audit-batcher-"));
  backend = SqliteBackend.open({ path: join(dir, "audit.db") });
});
afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

const entry = (i: number, sourceIp = "127.0.0.1") => ({ operation: "read", path: `p/${i}`, success: true, sourceIp });

test("concurrent rows are all committed, once each, in fewer commits than rows", async () => {
  const batcher = new AuditBatcher(backend);
  let commits = 0;
  const audit = backend.audit;
  const appendMany = (audit.appendMany as NonNullable<typeof audit.appendMany>).bind(audit);
  const append = audit.append.bind(audit);
  audit.appendMany = (entries) => {
    commits++;
    return appendMany(entries);
  };
  audit.append = (e) => {
    commits++;
    return append(e);
  };
  await Promise.all(Array.from({ length: 200 }, (_, i) => batcher.append(entry(i))));
  const rows = await backend.audit.query({ limit: 1000 });
  expect(rows.map((r) => r.path).sort()).toEqual(Array.from({ length: 200 }, (_, i) => `p/${i}`).sort());
  expect(commits).toBeGreaterThan(0);
  expect(commits).toBeLessThan(200);
});

test("a bad row in a batch fails alone; the others are committed", async () => {
  const batcher = new AuditBatcher(backend);
  const results = await Promise.allSettled([
    batcher.append(entry(0)),
    batcher.append(entry(1)),
    batcher.append(entry(2, "not-an-address")),
    batcher.append(entry(3)),
  ]);
  expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
  expect((await backend.audit.query()).map((r) => r.path).sort()).toEqual(["p/0", "p/1", "p/3"]);
});

test("when the log cannot be written, every caller is told", async () => {
  const batcher = new AuditBatcher(backend);
  const other = new Database(join(dir, "audit.db"));
  other.exec("CREATE TRIGGER audit_down BEFORE INSERT ON egide_audit_log BEGIN SELECT RAISE(FAIL, 'audit down'); END;");
  other.close();
  const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => batcher.append(entry(i))));
  expect(results.every((r) => r.status === "rejected")).toBe(true);
  expect(await backend.audit.query()).toEqual([]);
});
