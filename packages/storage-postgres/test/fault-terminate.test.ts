import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresBackend } from "../src/index.js";
import { createTestDatabase, withAdminClient, type TestDatabase } from "./support/postgres-server.js";
import { guardProcess } from "./support/guard-process.js";

// Load shape: enough writers to keep every pooled connection busy, long enough for a dozen or
// more rounds of terminations.
const WORKERS = 8;
const LOAD_MS = 3000;
const KILL_EVERY_MS = 150;
/** The codes a put may fail with while its connection is being killed. */
const EXPECTED_FAILURE_CODES: readonly string[] = [StorageErrorCode.UNAVAILABLE, StorageErrorCode.CONFLICT];

const TERMINATE_EGIDE = `
  SELECT pg_terminate_backend(pid) AS terminated
  FROM pg_stat_activity
  WHERE datname = $1 AND application_name = 'egide' AND pid <> pg_backend_pid()`;

/** The value a worker writes under `key`: unique per key, so a mix-up cannot go unseen. */
function valueFor(key: string): Buffer {
  return Buffer.from(`value of ${key}`, "utf8");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("pg_terminate_backend on every Egide connection during concurrent puts", () => {
  let database: TestDatabase;
  let backend: PostgresBackend;

  beforeAll(async () => {
    database = await createTestDatabase("fault_terminate");
    backend = await PostgresBackend.open({
      ...database.connection,
      poolMin: 2,
      poolMax: 6,
      // A put that hangs would stall the test; a killed connection fails at once anyway.
      operationTimeoutMs: 5000,
      connectionTimeoutMs: 3000,
    });
  }, 30_000);

  afterAll(async () => {
    await backend?.close();
    await database?.drop();
  });

  it("survives, reports only retryable errors, and loses no acknowledged put", async () => {
    const guard = guardProcess();
    try {
      const acknowledged: string[] = [];
      const failures: unknown[] = [];
      let stop = false;

      const worker = async (id: number) => {
        for (let n = 0; !stop; n++) {
          const key = `load/w${id}/k${String(n).padStart(6, "0")}`;
          try {
            await backend.put(key, valueFor(key));
            acknowledged.push(key);
          } catch (error) {
            failures.push(error);
            // Do not spin while the pool reconnects.
            await sleep(5);
          }
        }
      };

      let terminated = 0;
      let killRounds = 0;
      const killer = (client: pg.Client) =>
        (async () => {
          while (!stop) {
            const result = await client.query<{ terminated: boolean }>(TERMINATE_EGIDE, [database.name]);
            terminated += result.rows.filter((row) => row.terminated).length;
            killRounds += 1;
            await sleep(KILL_EVERY_MS);
          }
        })();

      await withAdminClient(database.name, async (client) => {
        const workers = Array.from({ length: WORKERS }, (_, id) => worker(id));
        const killing = killer(client);
        await sleep(LOAD_MS);
        stop = true;
        await Promise.all([...workers, killing]);
      });

      const unexpected = failures.filter((error) => !StorageError.isInstance(error) || !EXPECTED_FAILURE_CODES.includes(error.code));
      console.info(
        `fault-terminate: ${acknowledged.length} puts acknowledged, ${failures.length} failed, ` +
          `${terminated} backends terminated in ${killRounds} rounds`,
      );
      expect(unexpected.map(describeError)).toEqual([]);
      expect(terminated, "no Egide connection was ever terminated: the fault did not happen").toBeGreaterThan(0);
      expect(acknowledged.length, "hardly any put got through the load").toBeGreaterThan(50);

      // Once the killing stops, the backend must serve calls again without being reopened. The
      // last terminations are still arriving on idle connections for a moment.
      await sleep(300);
      const later = Array.from({ length: 20 }, (_, n) => `later/k${n}`);
      await Promise.all(later.map((key) => backend.put(key, valueFor(key))));
      for (const key of later) expect(await backend.get(key)).toEqual(valueFor(key));
      expect((await backend.health()).status).toBe("healthy");

      // Every acknowledged put is durable, checked straight in the table (not through the code
      // under test) and then through the backend.
      const stored = await withAdminClient(database.name, (client) =>
        client.query<{ key: string; value: Buffer }>("SELECT key, value FROM public.egide_storage WHERE key = ANY($1::text[])", [
          acknowledged,
        ]),
      );
      const found = new Map(stored.rows.map((row) => [row.key, row.value]));
      const missing = acknowledged.filter((key) => !found.has(key));
      const wrong = acknowledged.filter((key) => found.has(key) && !found.get(key)!.equals(valueFor(key)));
      expect(missing, "acknowledged puts missing from egide_storage").toEqual([]);
      expect(wrong, "acknowledged puts with another value").toEqual([]);
      const sample = acknowledged.filter((_, index) => index % 25 === 0);
      for (const key of sample) expect(await backend.get(key)).toEqual(valueFor(key));

      expect(guard.escaped.map(describeError), "errors escaped as uncaught exceptions or unhandled rejections").toEqual([]);
    } finally {
      guard.dispose();
    }
  }, 60_000);
});

/** A one-line summary of an error for assertion messages. */
function describeError(error: unknown): string {
  if (StorageError.isInstance(error)) return `StorageError ${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
