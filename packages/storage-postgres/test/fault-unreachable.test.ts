import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresBackend } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./support/postgres-server.js";
import { TcpProxy } from "@egide/test-postgres";
import { guardProcess } from "./support/guard-process.js";

/** Both the per-call deadline and the connection timeout of the backend under test. */
const DEADLINE_MS = 1000;
/** A call may overrun its deadline by this much (timers, event loop, a loaded machine). */
const SLACK_MS = 1000;
/** How long the backend gets to recover by itself once traffic flows again. */
const RECOVERY_MS = 5000;
const POOL_MAX = 4;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const value = (text: string) => Buffer.from(text, "utf8");

/** Runs `call`, expecting it to reject; returns the error and how long it took. */
async function timedFailure(call: () => Promise<unknown>): Promise<{ error: unknown; elapsedMs: number }> {
  const started = performance.now();
  try {
    const result = await call();
    return { error: new Error(`expected a failure, got ${JSON.stringify(result)}`), elapsedMs: performance.now() - started };
  } catch (error) {
    return { error, elapsedMs: performance.now() - started };
  }
}

/** A one-line summary of an error for assertion messages. */
function describeError(error: unknown): string {
  if (StorageError.isInstance(error)) return `StorageError ${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * What is wrong with one failed call, if anything: it must be an UNAVAILABLE StorageError that
 * settled within `limitMs`. Returned as text so a test lists every bad call at once.
 */
function check(name: string, outcome: { error: unknown; elapsedMs: number }, limitMs: number): string[] {
  const problems: string[] = [];
  const summary = `${name} (${Math.round(outcome.elapsedMs)} ms): ${describeError(outcome.error)}`;
  if (!StorageError.isInstance(outcome.error, StorageErrorCode.UNAVAILABLE)) problems.push(`not UNAVAILABLE: ${summary}`);
  if (outcome.elapsedMs >= limitMs) problems.push(`slower than ${limitMs} ms: ${summary}`);
  return problems;
}

/** Drains a scan, so that its failure (if any) surfaces as a rejection. */
async function drain(iterable: AsyncIterable<unknown>): Promise<number> {
  let count = 0;
  for await (const _entry of iterable) count += 1;
  return count;
}

describe("a database that stops answering (TCP proxy)", () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let backend: PostgresBackend;
  let guard: ReturnType<typeof guardProcess>;

  /**
   * Every kind of call. The writes made while the database is unreachable ("data/new", the
   * deletion of "data/b") must never arrive, which the recovery test checks.
   */
  const calls: Record<string, () => Promise<unknown>> = {
    get: () => backend.get("data/a"),
    put: () => backend.put("data/new", value("new")),
    delete: () => backend.delete("data/b"),
    exists: () => backend.exists("data/a"),
    list: () => backend.list("data/"),
    listPage: () => backend.listPage("data/", "", 10),
    scan: () => drain(backend.scan("data/")),
    transaction: () =>
      backend.transaction(async (tx) => {
        await tx.put("data/tx", value("tx"));
        return tx.get("data/a");
      }),
  };

  beforeAll(async () => {
    guard = guardProcess();
    database = await createTestDatabase("fault_unreachable");
    proxy = new TcpProxy({ targetHost: database.connection.host, targetPort: database.connection.port });
    const { port } = await proxy.start();
    backend = await PostgresBackend.open({
      ...database.connection,
      port,
      sslMode: "disable",
      poolMin: 0,
      poolMax: POOL_MAX,
      operationTimeoutMs: DEADLINE_MS,
      connectionTimeoutMs: DEADLINE_MS,
    });
  }, 30_000);

  afterAll(async () => {
    // Whatever state a failed test left, make every call fail fast so that close() cannot wait
    // on a client stuck in the black hole.
    proxy?.cut();
    await backend?.close();
    await proxy?.close();
    await database?.drop();
    guard?.dispose();
  });

  it("works while traffic passes", async () => {
    await backend.put("data/a", value("a"));
    await backend.put("data/b", value("b"));
    // Several calls at once, so that the pool holds more than one connection into the hole.
    await Promise.all(Array.from({ length: POOL_MAX }, () => backend.get("data/a")));
    expect(await backend.get("data/a")).toEqual(value("a"));
    expect(await backend.list("data/")).toEqual(["a", "b"]);
    expect(await calls.transaction!()).toEqual(value("a"));
    expect((await backend.health()).status).toBe("healthy");
    expect(proxy.acceptedConnections).toBeGreaterThan(0);
  }, 20_000);

  it("fails each call within its deadline with UNAVAILABLE when the database black-holes", async () => {
    proxy.blackhole();
    const violations: string[] = [];
    for (const name of ["get", "put", "list", "transaction"]) {
      violations.push(...check(name, await timedFailure(calls[name]!), DEADLINE_MS + SLACK_MS));
    }
    expect(violations).toEqual([]);
  }, 20_000);

  it("reports unhealthy within its time box while black-holed", async () => {
    const started = performance.now();
    const health = await backend.health();
    const elapsedMs = performance.now() - started;
    expect(health.status).toBe("unhealthy");
    expect(health.error).toBeTruthy();
    expect(elapsedMs, `health() took ${Math.round(elapsedMs)} ms`).toBeLessThan(DEADLINE_MS + SLACK_MS);
  }, 20_000);

  it("fails to open a backend within the connection timeout with UNAVAILABLE, and never hangs", async () => {
    const started = performance.now();
    const failure = await PostgresBackend.open({
      ...database.connection,
      port: proxy.port,
      sslMode: "disable",
      poolMin: 0,
      operationTimeoutMs: DEADLINE_MS,
      connectionTimeoutMs: DEADLINE_MS,
    }).catch((error: unknown) => error);
    const elapsedMs = performance.now() - started;
    expect(failure).toMatchObject({ code: "UNAVAILABLE", retryable: true });
    expect(elapsedMs, `open() took ${Math.round(elapsedMs)} ms`).toBeLessThan(DEADLINE_MS + SLACK_MS);
  }, 20_000);

  it("fails calls queued behind a full pool within their deadline too", async () => {
    // Twice as many calls as connections: half of them wait for a client that never comes back.
    const results = await Promise.all(
      Object.entries(calls).map(async ([name, call]) => check(name, await timedFailure(call), DEADLINE_MS + SLACK_MS)),
    );
    expect(results.flat()).toEqual([]);
  }, 20_000);

  it("fails calls quickly with UNAVAILABLE when connections are cut", async () => {
    proxy.cut();
    const violations: string[] = [];
    for (const [name, call] of Object.entries(calls)) {
      // A reset connection is known at once, so a single statement does not wait for its
      // deadline. A transaction may spend its deadline retrying the connection, which is fine.
      const limit = name === "transaction" ? DEADLINE_MS + SLACK_MS : DEADLINE_MS / 2;
      violations.push(...check(name, await timedFailure(call), limit));
    }
    expect(violations).toEqual([]);
    const health = await backend.health();
    expect(health.status).toBe("unhealthy");
    expect(health.latencyMs).toBeLessThan(DEADLINE_MS / 2);
  }, 20_000);

  it("recovers by itself when traffic passes again", async () => {
    proxy.pass();
    const started = performance.now();
    let lastError: unknown;
    let recovered = false;
    while (performance.now() - started < RECOVERY_MS) {
      try {
        await backend.put("data/recovered", value("yes"));
        expect(await backend.get("data/recovered")).toEqual(value("yes"));
        recovered = true;
        break;
      } catch (error) {
        lastError = error;
        await sleep(100);
      }
    }
    expect(recovered, `no recovery within ${RECOVERY_MS} ms; last error: ${describeError(lastError)}`).toBe(true);

    // Once one call works, every kind works again, without reopening the backend.
    // Nothing written while the database was unreachable arrived ("data/new" is absent, "data/b"
    // was not deleted); "data/tx" is from the first test's transaction.
    expect(await backend.list("data/")).toEqual(["a", "b", "recovered", "tx"]);
    expect(await backend.exists("data/a")).toBe(true);
    expect(await drain(backend.scan("data/"))).toBe(4);
    expect(await calls.transaction!()).toEqual(value("a"));
    await Promise.all(Array.from({ length: POOL_MAX * 2 }, (_, n) => backend.put(`data/after/${n}`, value(String(n)))));
    expect(await backend.list("data/after/")).toHaveLength(POOL_MAX * 2);
    expect((await backend.health()).status).toBe("healthy");
  }, 20_000);

  it("let no error escape as an uncaught exception or unhandled rejection", async () => {
    // Late outcomes of abandoned calls and resets of idle connections arrive after the calls
    // failed; give them a moment to surface.
    await sleep(200);
    expect(guard.escaped.map(describeError)).toEqual([]);
  });
});
