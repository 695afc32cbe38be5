import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresBackend } from "../src/index.js";
import { createTestDatabase, withAdminClient, type TestDatabase } from "./support/postgres-server.js";

const STATEMENT_TIMEOUT_MS = 300;
/** How long a call blocked by a lock may take to fail: the timeout plus generous slack. */
const FAIL_WITHIN_MS = 2000;
const TABLE = "public.egide_storage";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The pids of the backend's connections to the test database, as the server sees them. */
async function egidePids(client: pg.Client, database: string): Promise<number[]> {
  const result = await client.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'egide' ORDER BY pid",
    [database],
  );
  return result.rows.map((row) => row.pid);
}

/** Polls until `pid` has left pg_stat_activity (a closed connection disappears asynchronously). */
async function waitUntilGone(client: pg.Client, database: string, pid: number, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await egidePids(client, database)).includes(pid)) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

/** Awaits `promise`, expecting a StorageError, and says how long it took to settle. */
async function failure(promise: Promise<unknown>): Promise<{ error: unknown; elapsedMs: number }> {
  const started = performance.now();
  try {
    const value = await promise;
    throw new Error(`expected a failure, got ${JSON.stringify(value)}`);
  } catch (error) {
    return { error, elapsedMs: performance.now() - started };
  }
}

describe(`statement_timeout (${STATEMENT_TIMEOUT_MS} ms)`, () => {
  let database: TestDatabase;
  let backend: PostgresBackend;

  beforeAll(async () => {
    database = await createTestDatabase("fault_stmt_timeout");
    backend = await PostgresBackend.open({
      ...database.connection,
      statementTimeoutMs: STATEMENT_TIMEOUT_MS,
      // One connection, so "the client that timed out" is the only egide pid on the server.
      poolMin: 1,
      poolMax: 1,
      idleTimeoutMs: 60_000,
    });
  }, 30_000);

  afterAll(async () => {
    await backend?.close();
    await database?.drop();
  });

  it("fails a blocked read with TIMEOUT and does not reuse its client", async () => {
    await backend.put("k", Buffer.from("before"));
    await withAdminClient(database.name, async (admin) => {
      const before = await egidePids(admin, database.name);
      expect(before, "expected exactly one egide connection (poolMax 1)").toHaveLength(1);
      const oldPid = before[0]!;

      await withAdminClient(database.name, async (locker) => {
        await locker.query("BEGIN");
        await locker.query(`LOCK TABLE ${TABLE} IN ACCESS EXCLUSIVE MODE`);
        try {
          const { error, elapsedMs } = await failure(backend.get("k"));
          expect(describeError(error)).toMatch(/^StorageError TIMEOUT/);
          expect(StorageError.isInstance(error, StorageErrorCode.TIMEOUT)).toBe(true);
          expect(elapsedMs).toBeLessThan(FAIL_WITHIN_MS);
        } finally {
          await locker.query("ROLLBACK");
        }
      });

      // The connection that timed out is closed, not handed back to the pool.
      expect(
        await waitUntilGone(admin, database.name, oldPid),
        `egide connection ${oldPid} is still open after its statement timed out`,
      ).toBe(true);
      expect(await backend.get("k")).toEqual(Buffer.from("before"));
      await backend.put("k", Buffer.from("after"));
      expect(await backend.get("k")).toEqual(Buffer.from("after"));
      const after = await egidePids(admin, database.name);
      expect(after).toHaveLength(1);
      expect(after).not.toContain(oldPid);
    });
  }, 30_000);

  it("fails a transaction whose statement is blocked with TIMEOUT and commits nothing", async () => {
    await backend.put("tx/contended", Buffer.from("original"));
    await withAdminClient(database.name, async (admin) => {
      const before = await egidePids(admin, database.name);
      expect(before).toHaveLength(1);
      const oldPid = before[0]!;

      await withAdminClient(database.name, async (locker) => {
        // A row lock only: the transaction's first write goes through, its second one waits.
        await locker.query("BEGIN");
        await locker.query(`SELECT 1 FROM ${TABLE} WHERE key = 'tx/contended' FOR UPDATE`);
        let firstWriteDone = false;
        try {
          const { error, elapsedMs } = await failure(
            backend.transaction(async (tx) => {
              await tx.put("tx/first", Buffer.from("must not be committed"));
              firstWriteDone = true;
              await tx.put("tx/contended", Buffer.from("must not be committed"));
            }),
          );
          expect(describeError(error)).toMatch(/^StorageError TIMEOUT/);
          expect(elapsedMs).toBeLessThan(FAIL_WITHIN_MS);
          expect(firstWriteDone, "the transaction failed before the statement meant to time out").toBe(true);
        } finally {
          await locker.query("ROLLBACK");
        }
      });

      expect(
        await waitUntilGone(admin, database.name, oldPid),
        `egide connection ${oldPid} is still open after its transaction timed out`,
      ).toBe(true);
      // Nothing of the transaction is visible, neither through the backend nor in the table.
      expect(await backend.get("tx/first")).toBeNull();
      expect(await backend.get("tx/contended")).toEqual(Buffer.from("original"));
      const rows = await admin.query<{ key: string; value: Buffer }>(`SELECT key, value FROM ${TABLE} WHERE key LIKE 'tx/%' ORDER BY key`);
      expect(rows.rows.map((row) => [row.key, row.value.toString()])).toEqual([["tx/contended", "original"]]);

      // And the backend works normally afterwards, transactions included.
      await backend.transaction(async (tx) => {
        await tx.put("tx/first", Buffer.from("committed later"));
      });
      expect(await backend.get("tx/first")).toEqual(Buffer.from("committed later"));
    });
  }, 30_000);
});

/** A one-line summary of an error for assertion messages. */
function describeError(error: unknown): string {
  if (StorageError.isInstance(error)) return `StorageError ${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
