import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POSTGRES_SCHEMA_VERSION, PostgresBackend, checkPostgresSchema, migratePostgresSchema } from "../src/index.js";
import { createTestDatabase, quoteIdentifier, withAdminClient } from "./support/postgres-server.js";

// A linguistic default collation, so that only the key column's COLLATE "C" gives byte order.
const database = await createTestDatabase("schema", { icuLocale: "en-US" });
afterAll(() => database.drop());

let counter = 0;
/** A schema name nobody has used yet in this database. */
const newSchema = (label: string) => `${label}_${++counter}_${Math.random().toString(36).slice(2, 8)}`;
const optionsFor = (schema: string) => ({ ...database.connection, schema, poolMin: 0, poolMax: 2 });

/** Runs one query against the test database, straight to PostgreSQL. */
function sql<T extends Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
  return withAdminClient(database.name, async (client) => (await client.query<T>(text, values)).rows);
}

/** Every relation (table, index, sequence) in `schema`, and whether the schema exists at all. */
async function catalog(schema: string): Promise<{ exists: boolean; relations: string[] }> {
  const exists = (await sql("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema])).length === 1;
  const relations = await sql<{ r: string }>(
    `SELECT c.relkind::text || ':' || c.relname AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 ORDER BY c.relname`,
    [schema],
  );
  return { exists, relations: relations.map((row) => row.r) };
}

/** Columns of `table` as information_schema describes them. */
function columns(schema: string, table: string) {
  return sql(
    `SELECT column_name AS name, data_type AS type, is_nullable AS nullable, column_default AS "default", collation_name AS collation
       FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    [schema, table],
  );
}

const upToDate = { currentVersion: POSTGRES_SCHEMA_VERSION, expectedVersion: POSTGRES_SCHEMA_VERSION, upToDate: true };

describe("the specification's tables", () => {
  const schema = newSchema("spec");
  let ready: Promise<unknown>;
  beforeAll(() => {
    ready = migratePostgresSchema(optionsFor(schema));
    return ready.then(() => undefined);
  });

  it('creates egide_storage with a COLLATE "C" text primary key and a bytea value', async () => {
    await ready;
    expect(await columns(schema, "egide_storage")).toEqual([
      { name: "key", type: "text", nullable: "NO", default: null, collation: "C" },
      { name: "value", type: "bytea", nullable: "NO", default: null, collation: null },
      { name: "created_at", type: "timestamp with time zone", nullable: "NO", default: "now()", collation: null },
      { name: "updated_at", type: "timestamp with time zone", nullable: "NO", default: "now()", collation: null },
    ]);
  });

  it("creates egide_audit_log with the specification's columns and a bigserial id", async () => {
    await ready;
    expect(await columns(schema, "egide_audit_log")).toEqual([
      {
        name: "id",
        type: "bigint",
        nullable: "NO",
        default: expect.stringMatching(/^nextval\('.*egide_audit_log_id_seq'::regclass\)$/),
        collation: null,
      },
      { name: "timestamp", type: "timestamp with time zone", nullable: "NO", default: "now()", collation: null },
      { name: "tenant_id", type: "uuid", nullable: "YES", default: null, collation: null },
      { name: "operation", type: "text", nullable: "NO", default: null, collation: null },
      { name: "path", type: "text", nullable: "NO", default: null, collation: null },
      { name: "source_ip", type: "inet", nullable: "YES", default: null, collation: null },
      { name: "user_id", type: "text", nullable: "YES", default: null, collation: null },
      { name: "request_id", type: "uuid", nullable: "YES", default: null, collation: null },
      { name: "success", type: "boolean", nullable: "NO", default: null, collation: null },
      { name: "error_message", type: "text", nullable: "YES", default: null, collation: null },
      { name: "metadata", type: "jsonb", nullable: "YES", default: null, collation: null },
    ]);
    const [sequence] = await sql<{ seq: string | null }>("SELECT pg_get_serial_sequence($1, 'id') AS seq", [
      `${quoteIdentifier(schema)}.egide_audit_log`,
    ]);
    expect(sequence?.seq).toMatch(/egide_audit_log_id_seq$/);
  });

  it("has the primary keys and the specification's indexes", async () => {
    await ready;
    const primaryKeys = await sql<{ table: string; columns: string }>(
      `SELECT c.relname AS table, string_agg(a.attname, ',' ORDER BY a.attnum) AS columns
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
        WHERE i.indisprimary AND n.nspname = $1 AND c.relname IN ('egide_storage', 'egide_audit_log')
        GROUP BY c.relname ORDER BY c.relname`,
      [schema],
    );
    expect(primaryKeys).toEqual([
      { table: "egide_audit_log", columns: "id" },
      { table: "egide_storage", columns: "key" },
    ]);
    const indexes = Object.fromEntries(
      (
        await sql<{ name: string; def: string }>("SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE schemaname = $1", [
          schema,
        ])
      ).map((row) => [row.name, row.def]),
    );
    expect(indexes.idx_storage_prefix).toMatch(/ON \S*egide_storage USING btree \(key text_pattern_ops\)$/);
    expect(indexes.idx_audit_timestamp).toMatch(/ON \S*egide_audit_log USING btree \("?timestamp"?\)$/);
    expect(indexes.idx_audit_tenant).toMatch(/ON \S*egide_audit_log USING btree \(tenant_id, "?timestamp"?\)$/);
  });

  it("orders and compares keys in byte order whatever the database's collation", async () => {
    await ready;
    const table = `${quoteIdentifier(schema)}.egide_storage`;
    await sql(`INSERT INTO ${table} (key, value) SELECT k, '\\x00' FROM unnest($1::text[]) AS k`, [
      ["a", "B", "é", "z", "_", "/", "\u{1F600}", "\uFFFD"],
    ]);
    try {
      // The column's own collation decides ORDER BY and range predicates (no COLLATE here).
      const ordered = await sql<{ key: string }>(`SELECT key FROM ${table} ORDER BY key`);
      expect(ordered.map((r) => r.key)).toEqual(["/", "B", "_", "a", "z", "é", "\uFFFD", "\u{1F600}"]);
      const range = await sql<{ key: string }>(`SELECT key FROM ${table} WHERE key >= 'Z' AND key < 'b' ORDER BY key`);
      expect(range.map((r) => r.key)).toEqual(["_", "a"]);
      // The database's own collation sorts differently, so the checks above can fail.
      const linguistic = await sql<{ key: string }>(`SELECT key FROM ${table} ORDER BY key COLLATE "default"`);
      expect(linguistic.map((r) => r.key)).not.toEqual(ordered.map((r) => r.key));
    } finally {
      await sql(`DELETE FROM ${table}`);
    }
  });

  it("keeps every table in the configured schema and nothing in public", async () => {
    await ready;
    const tables = await sql<{ schema: string; table: string }>(
      `SELECT table_schema AS schema, table_name AS table FROM information_schema.tables
        WHERE table_name LIKE 'egide\\_%' AND table_schema IN ($1, 'public') ORDER BY 2`,
      [schema],
    );
    expect(tables.map((t) => t.schema)).not.toContain("public");
    expect(tables.map((t) => t.table)).toEqual(expect.arrayContaining(["egide_audit_log", "egide_storage"]));
  });
});

describe("migrations", () => {
  it("are idempotent: a second run changes nothing and keeps the data", async () => {
    const schema = newSchema("twice");
    expect(await migratePostgresSchema(optionsFor(schema))).toEqual(upToDate);
    const backend = await PostgresBackend.open(optionsFor(schema));
    await backend.put("kept/key", Buffer.from("value"));
    await backend.audit.append({ operation: "update", path: "kept/key", success: true });
    const before = await catalog(schema);
    expect(await migratePostgresSchema(optionsFor(schema))).toEqual(upToDate);
    expect(await catalog(schema)).toEqual(before);
    // Opening migrates too: it must also be a no-op on a current schema.
    const again = await PostgresBackend.open(optionsFor(schema));
    expect(await again.get("kept/key")).toEqual(Buffer.from("value"));
    expect(await again.audit.query()).toHaveLength(1);
    await again.close();
    await backend.close();
    expect(await catalog(schema)).toEqual(before);
  });

  it("succeed in two processes migrating the same fresh schemas at the same moment", async () => {
    const dist = resolve(dirname(fileURLToPath(import.meta.url)), "../dist/index.js");
    expect(existsSync(dist), `${dist} is missing: build the package first (npx tsc -b)`).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), "egide-pg-migrate-"));
    try {
      const script = join(dir, "migrate.mjs");
      // The child connects and imports first, says "ready", then waits for "go" on stdin so both
      // processes call migratePostgresSchema as close together as the OS allows.
      writeFileSync(
        script,
        `import { migratePostgresSchema } from ${JSON.stringify(pathToFileURL(dist).href)};
const { options, schemas } = JSON.parse(process.argv[2]);
process.stdout.write("ready\\n");
await new Promise((resolve) => process.stdin.once("data", resolve));
const results = await Promise.all(schemas.map((schema) => migratePostgresSchema({ ...options, schema })));
process.stdout.write(JSON.stringify(results) + "\\n");
process.exit(0);
`,
      );
      // Several schemas per process, migrated in parallel, multiply the chances of a real overlap.
      const schemas = [newSchema("race"), newSchema("race"), newSchema("race")];
      const argument = JSON.stringify({ options: { ...database.connection }, schemas });
      const children = [0, 1].map(() => {
        const child = spawn(process.execPath, [script, argument], { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        const ready = new Promise<void>((resolveReady, rejectReady) => {
          const check = () => stdout.includes("ready\n") && resolveReady();
          child.stdout.on("data", check);
          child.once("exit", (code) => rejectReady(new Error(`child exited (${code}) before it was ready: ${stderr}`)));
        });
        const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolveDone) =>
          child.once("exit", (code) => resolveDone({ code, stdout, stderr })),
        );
        return { child, ready, done };
      });
      await Promise.all(children.map((c) => c.ready));
      for (const { child } of children) child.stdin.write("go\n");
      const outcomes = await Promise.all(children.map((c) => c.done));
      for (const outcome of outcomes) {
        expect({ code: outcome.code, stderr: outcome.stderr }).toEqual({ code: 0, stderr: "" });
        const results = JSON.parse(outcome.stdout.split("\n")[1] as string);
        expect(results).toEqual(schemas.map(() => upToDate));
      }
      for (const schema of schemas) {
        expect(await checkPostgresSchema(optionsFor(schema))).toEqual(upToDate);
        expect((await catalog(schema)).relations).toEqual(expect.arrayContaining(["r:egide_storage", "r:egide_audit_log"]));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it("refuse a schema written by a newer build", async () => {
    const schema = newSchema("newer");
    await migratePostgresSchema(optionsFor(schema));
    await sql(`INSERT INTO ${quoteIdentifier(schema)}.egide_schema_version (version) VALUES (99)`);
    expect(await checkPostgresSchema(optionsFor(schema))).toEqual({
      currentVersion: 99,
      expectedVersion: POSTGRES_SCHEMA_VERSION,
      upToDate: false,
    });
    await expect(migratePostgresSchema(optionsFor(schema))).rejects.toThrow(/99/);
    await expect(PostgresBackend.open(optionsFor(schema))).rejects.toThrow(/99/);
  });
});

describe("checkPostgresSchema", () => {
  it("reports a missing schema as not up to date and does not create it", async () => {
    const schema = newSchema("absent");
    expect(await checkPostgresSchema(optionsFor(schema))).toEqual({
      currentVersion: 0,
      expectedVersion: POSTGRES_SCHEMA_VERSION,
      upToDate: false,
    });
    expect(await catalog(schema)).toEqual({ exists: false, relations: [] });
  });

  it("reports an empty schema as not up to date, then up to date after migrating, changing nothing itself", async () => {
    const schema = newSchema("empty");
    await sql(`CREATE SCHEMA ${quoteIdentifier(schema)}`);
    expect(await checkPostgresSchema(optionsFor(schema))).toEqual({
      currentVersion: 0,
      expectedVersion: POSTGRES_SCHEMA_VERSION,
      upToDate: false,
    });
    expect(await catalog(schema)).toEqual({ exists: true, relations: [] });
    await migratePostgresSchema(optionsFor(schema));
    const migrated = await catalog(schema);
    expect(await checkPostgresSchema(optionsFor(schema))).toEqual(upToDate);
    expect(await catalog(schema)).toEqual(migrated);
  });

  it("is current for a schema that PostgresBackend.open created", async () => {
    const schema = newSchema("opened");
    const backend = await PostgresBackend.open(optionsFor(schema));
    await backend.close();
    expect(await checkPostgresSchema(optionsFor(schema))).toEqual(upToDate);
  });
});
