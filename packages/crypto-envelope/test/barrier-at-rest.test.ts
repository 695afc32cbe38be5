import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StorageBackend } from "@egide/storage-core";
import { PostgresBackend } from "@egide/storage-postgres";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { KEYRING_KEY, RESERVED_PREFIX, ROOT_KEY_KEY, SEAL_CONFIG_KEY } from "../src/index.js";
import { RECORD_FORMAT_V1, RecordType, VALUE_RECORD_OVERHEAD } from "../src/internal.js";
import { createTestDatabase, quoteIdentifier, randomSuffix, withClient } from "@egide/test-postgres";
import { openSealedStack } from "./support/sealed-stack.js";

// What the barrier leaves at rest: values written through it must not appear anywhere in the
// storage beneath (the SQLite file and its WAL, PostgreSQL's table), while keys do (they are
// plaintext by design, which also proves the searches can find what is there). Under `.egide/`
// only the seal configuration is plaintext.

/** One known plaintext written through the barrier. */
interface Canary {
  key: string;
  /** Unique to this value and repeated through it, so even a partial leak is found. */
  marker: string;
  value: Buffer;
}

/** The common start of every marker of this run; no key contains it. */
const CANARY_PREFIX = `PLAINTEXT-CANARY-${randomBytes(8).toString("hex")}`;
/** The folder of this run's keys. */
const KEY_FOLDER = `at-rest-${randomBytes(4).toString("hex")}/`;

/** A plaintext of exactly `size` bytes (at least the marker): the marker, repeated. */
function canary(label: string, size?: number): Canary {
  const marker = `${CANARY_PREFIX}-${label}-`;
  const bytes = Buffer.from(marker, "utf8");
  const value = size === undefined ? bytes : Buffer.alloc(Math.max(size, bytes.length), bytes);
  return { key: `${KEY_FOLDER}${label}`, marker, value };
}

/** A value overwritten later: the first plaintext must not linger either. */
const REPLACED_OLD = canary("replaced", 3000);
const REPLACED_NEW = { ...canary("replaced-new", 700), key: REPLACED_OLD.key };
/** A value deleted through the barrier: it was only ever stored encrypted. */
const DELETED = canary("deleted", 5000);

const DIRECT = [canary("small"), canary("one-kib", 1024), canary("eight-kib", 8 * 1024), canary("sixty-four-kib", 64 * 1024)];
const IN_TRANSACTION = [canary("tx-small"), canary("tx-four-kib", 4 * 1024), canary("tx-sixty-four-kib", 64 * 1024)];

/** Every plaintext that ever went through the barrier. */
const ALL_PLAINTEXTS: Canary[] = [...DIRECT, ...IN_TRANSACTION, REPLACED_OLD, REPLACED_NEW, DELETED];
/** What the barrier holds at the end, key by key. */
const STORED: Canary[] = [...DIRECT, ...IN_TRANSACTION, REPLACED_NEW];

/** Writes every canary through `b` (directly, in a transaction, overwritten, deleted) and reads them back. */
async function writeCanaries(b: StorageBackend): Promise<void> {
  for (const c of DIRECT) await b.put(c.key, c.value);
  await b.put(REPLACED_OLD.key, REPLACED_OLD.value);
  await b.put(DELETED.key, DELETED.value);
  await b.transaction(async (tx) => {
    for (const c of IN_TRANSACTION) await tx.put(c.key, c.value);
    await tx.put(REPLACED_NEW.key, REPLACED_NEW.value);
  });
  await b.delete(DELETED.key);
  // The writes landed: the barrier gives the plaintexts back.
  for (const c of STORED) expect((await b.get(c.key))?.equals(c.value), c.key).toBe(true);
  expect(await b.exists(DELETED.key)).toBe(false);
  expect(await b.list(KEY_FOLDER)).toEqual(STORED.map((c) => c.key.slice(KEY_FOLDER.length)).sort());
}

/** The canaries whose plaintext (or any marker) occurs in `haystack`. */
function leaks(haystack: Buffer): string[] {
  const found: string[] = [];
  if (haystack.includes(CANARY_PREFIX, 0, "utf8")) found.push(`the canary prefix ${CANARY_PREFIX}`);
  for (const c of ALL_PLAINTEXTS) {
    if (haystack.includes(c.marker, 0, "utf8")) found.push(`the marker of ${c.key}`);
    if (haystack.includes(c.value)) found.push(`the whole plaintext of ${c.key} (${c.value.length} bytes)`);
  }
  return found;
}

/** The storage keys (UTF-8) that do NOT occur in `haystack`. */
function missingKeys(haystack: Buffer, keys: readonly string[]): string[] {
  return keys.filter((key) => !haystack.includes(key, 0, "utf8"));
}

/** The barrier's own records: `.egide/seal-config` is JSON, the root key and keyring are sealed records. */
async function checkReservedRecords(raw: StorageBackend): Promise<void> {
  const reserved = new Map<string, Buffer>();
  for await (const entry of raw.scan(RESERVED_PREFIX)) reserved.set(entry.key, entry.value);
  // No rewrap ran, so there is no progress record.
  expect([...reserved.keys()]).toEqual([KEYRING_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY]);

  const config = JSON.parse((reserved.get(SEAL_CONFIG_KEY) as Buffer).toString("utf8")) as Record<string, unknown>;
  expect(config).toMatchObject({ type: "shamir", shares: 1, threshold: 1 });
  expect(typeof config.salt).toBe("string");

  const rootKey = reserved.get(ROOT_KEY_KEY) as Buffer;
  expect([rootKey[0], rootKey[1]]).toEqual([RECORD_FORMAT_V1, RecordType.ROOT_KEY]);
  expect([rootKey[0], rootKey[1]]).toEqual([0x01, 0x02]);
  const keyring = reserved.get(KEYRING_KEY) as Buffer;
  expect([keyring[0], keyring[1]]).toEqual([RECORD_FORMAT_V1, RecordType.KEYRING]);
  expect([keyring[0], keyring[1]]).toEqual([0x01, 0x03]);
  // The keyring's JSON field names would show if it were stored in the clear.
  for (const field of ['"generation"', '"versions"', '"encryptions"']) {
    expect(keyring.includes(field, 0, "utf8"), field).toBe(false);
  }
  for (const record of [rootKey, keyring]) expect(() => JSON.parse(record.toString("utf8"))).toThrow();
}

/** Every stored value record through the raw backend: a value record, the plaintext's size plus the overhead, no plaintext. */
async function checkValueRecords(raw: StorageBackend): Promise<void> {
  for (const c of STORED) {
    const record = (await raw.get(c.key)) as Buffer;
    expect(record, c.key).not.toBeNull();
    expect([record[0], record[1]], c.key).toEqual([RECORD_FORMAT_V1, RecordType.VALUE]);
    expect(record.length, c.key).toBe(c.value.length + VALUE_RECORD_OVERHEAD);
    expect(leaks(record), c.key).toEqual([]);
  }
  expect(await raw.exists(DELETED.key)).toBe(false);
}

/** The keys every search must find: the stored values' keys and the barrier's records. */
const EXPECTED_KEYS = [...STORED.map((c) => c.key), SEAL_CONFIG_KEY, ROOT_KEY_KEY, KEYRING_KEY];

describe("barrier at rest: sqlite (file, WAL)", () => {
  const dir = mkdtempSync(join(tmpdir(), "egide-barrier-at-rest-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Every file SQLite keeps for the database (the file, -wal, -shm, any journal), by name. */
  function readDatabaseFiles(base: string): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    for (const name of readdirSync(dir)) {
      if (name.startsWith(base)) files.set(name, readFileSync(join(dir, name)));
    }
    return files;
  }

  it("no plaintext in the database file or its WAL, open and after close; keys and the seal config are there", async () => {
    const base = "at-rest.sqlite";
    const raw = SqliteBackend.open({ path: join(dir, base) });
    const { barrier: b, shares } = await openSealedStack({ raw });
    for (const share of shares) share.fill(0);
    await writeCanaries(b);
    await checkReservedRecords(raw);
    await checkValueRecords(raw);

    // While open: the recent writes sit in the WAL, not yet checkpointed into the file.
    const open = readDatabaseFiles(base);
    expect([...open.keys()]).toContain(base);
    expect([...open.keys()]).toContain(`${base}-wal`);
    expect((open.get(`${base}-wal`) as Buffer).length).toBeGreaterThan(64 * 1024);

    await b.close();
    // After close: SQLite checkpoints the WAL into the file (and usually removes it).
    const closed = readDatabaseFiles(base);
    expect([...closed.keys()]).toContain(base);

    for (const [when, files] of [
      ["open", open],
      ["closed", closed],
    ] as const) {
      for (const [name, bytes] of files) {
        expect(leaks(bytes), `${when}: ${name}`).toEqual([]);
        // The keyring in the clear would show its field names.
        expect(bytes.includes('"generation"', 0, "utf8"), `${when}: ${name}`).toBe(false);
      }
      // The search does find what is there: every key, and the plaintext seal configuration.
      const all = Buffer.concat([...files.values()]);
      expect(missingKeys(all, EXPECTED_KEYS), when).toEqual([]);
      expect(all.includes('"threshold":1', 0, "utf8"), when).toBe(true);
    }
    // Once checkpointed, the file alone holds every key.
    expect(missingKeys(closed.get(base) as Buffer, EXPECTED_KEYS)).toEqual([]);
  });
});

describe("barrier at rest: postgresql", () => {
  const database = createTestDatabase("barrier");
  const schema = `s_at_rest_${randomSuffix()}`;
  let raw: PostgresBackend | undefined;
  afterAll(async () => {
    await raw?.close();
    await (await database).drop();
  });

  it("no value in egide_storage holds a plaintext; keys and the seal config are there", async () => {
    const db = await database;
    raw = await PostgresBackend.open({ ...db.connection, schema, poolMin: 0, poolMax: 4 });
    const { barrier: b, shares } = await openSealedStack({ raw });
    for (const share of shares) share.fill(0);
    await writeCanaries(b);
    await checkReservedRecords(raw);
    await checkValueRecords(raw);
    await b.close();

    const rows = await withClient(db.name, async (client) => {
      const result = await client.query<{ key: string; value: Buffer }>(
        `SELECT key, value FROM ${quoteIdentifier(schema)}.egide_storage ORDER BY key`,
      );
      return result.rows;
    });
    expect(rows.map((row) => row.key).sort()).toEqual([...EXPECTED_KEYS].sort());
    for (const row of rows) {
      expect(Buffer.isBuffer(row.value), row.key).toBe(true);
      expect(leaks(row.value), row.key).toEqual([]);
    }
    // The values are really there (encrypted), each the size of its plaintext plus the overhead.
    const byKey = new Map(rows.map((row) => [row.key, row.value]));
    for (const c of STORED) expect(byKey.get(c.key)?.length, c.key).toBe(c.value.length + VALUE_RECORD_OVERHEAD);
    // The search finds plaintext where there is some: the seal configuration.
    expect(byKey.get(SEAL_CONFIG_KEY)?.includes('"threshold":1', 0, "utf8")).toBe(true);
    expect(leaks(Buffer.concat(rows.map((row) => row.value)))).toEqual([]);
  });
});
