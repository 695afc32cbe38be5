import {
  type AuditingBackend,
  type HealthStatus,
  type KeySeek,
  type ScanEntry,
  type Transaction,
  type TransactionOptions,
  StorageError,
  StorageErrorCode,
  prefixSuccessor,
  validateKey,
  validateListPage,
  validatePrefix,
  validateValue,
  withRetries,
} from "@egide/storage-core";
import { __Type__AuditStore } from "./__TYPE__-audit-store.js";
import { resolve__Type__Options, type __Type__Options, type Resolved__Type__Options } from "./__TYPE__-options.js";
import { __Type__Transaction } from "./__TYPE__-transaction.js";
import { __CONST___TYPE } from "./__TYPE__-type.js";
import { notImplemented } from "./not-implemented.js";

/** Entries read per page of {@link __Type__Backend.scan}. */
const SCAN_PAGE_SIZE = 256;

/**
 * The __TYPE__ storage backend: Egide's `StorageBackend` contract (the JSDoc of
 * `@egide/storage-core`'s `StorageBackend`, and docs/adding-a-backend.md), with the audit log
 * beside the data (`AuditingBackend`), which the server requires.
 *
 * Every member that throws `notImplemented(…)` is yours to write; the rest is plumbing shared by
 * most databases, which you may keep or replace. Rules for every member:
 * - Check the arguments first (`validateKey`, `validatePrefix`, `validateValue`,
 *   `validateListPage`): a bad key is `INVALID_KEY` and nothing is read or written.
 * - Throw only `StorageError`s with the contract's codes (`UNAVAILABLE`, `TIMEOUT`, `CONFLICT`,
 *   `CORRUPT`, `INTERNAL` with the driver's error as `cause`, …), never a driver's error, and
 *   never put a value, a password or credentials in a message.
 * - After `close()`, everything fails with `CLOSED` (`assertOpen()`), except `health()`.
 */
export class __Type__Backend implements AuditingBackend {
  readonly type = __CONST___TYPE;
  /** The audit store that lives beside the data (the server refuses a backend without one). */
  readonly audit: __Type__AuditStore;
  /** The options this backend was opened with, defaults applied. */
  readonly options: Resolved__Type__Options;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(options: Resolved__Type__Options) {
    this.options = options;
    this.audit = new __Type__AuditStore(this);
  }

  /**
   * Opens the backend. Connect here, check that the database answers, and create your schema
   * (tables, key space, audit log) when it is missing; fail with `UNAVAILABLE` when the database
   * cannot be reached, naming where it was looked for (without credentials).
   */
  static async open(options: __Type__Options = {}): Promise<__Type__Backend> {
    const resolved = resolve__Type__Options(options);
    // TODO: connect to the database with `resolved`, and keep the connection (or pool) here.
    return new __Type__Backend(resolved);
  }

  /**
   * The value at `key`, or `null` when absent, as a fresh `Buffer` (callers may zero it).
   * Conformance: OpenBao's ExerciseBackend, keys (all the rules), values (every byte value, empty
   * values, up to `maxValueBytes`), UTF-8 byte order.
   */
  async get(key: string): Promise<Buffer | null> {
    validateKey(key, this.type);
    this.assertOpen();
    // TODO: read the value of `key`.
    throw notImplemented("__Type__Backend.get()");
  }

  /**
   * Inserts or overwrites `key`; resolves once the write is durable. Copy or send `value` before
   * the first `await`: the caller may reuse its buffer. Past `maxValueBytes` it is
   * `VALUE_TOO_LARGE` (`validateValue` throws it). Conformance: 50 concurrent puts to one key
   * leave one intact value; a put racing a delete ends in one of the two outcomes.
   */
  async put(key: string, value: Uint8Array): Promise<void> {
    validateKey(key, this.type);
    validateValue(value, this.options.maxValueBytes, this.type);
    this.assertOpen();
    // TODO: write `value` at `key`.
    throw notImplemented("__Type__Backend.put()");
  }

  /** Removes `key`; an absent key is not an error, and the keys below it (`key/…`) stay. */
  async delete(key: string): Promise<void> {
    validateKey(key, this.type);
    this.assertOpen();
    // TODO: delete `key` (only that key).
    throw notImplemented("__Type__Backend.delete()");
  }

  /** Whether `key` holds a value (a folder with keys below it does not). */
  async exists(key: string): Promise<boolean> {
    validateKey(key, this.type);
    this.assertOpen();
    // TODO: check `key` without reading its value, where the database allows.
    throw notImplemented("__Type__Backend.exists()");
  }

  /**
   * The direct children of `prefix`, as Vault lists them: `["bar", "bar/"]` when `bar` is both a
   * key and a folder, folders with a trailing `/`, in UTF-8 byte order. Plumbing: see
   * {@link __Type__Backend.listPage}.
   */
  list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  /**
   * `list(prefix)` after `after` (exclusive, byte order), at most `limit` entries (`<= 0`: all).
   *
   * Plumbing: a read-only transaction runs storage-core's skip-scan (`listChildren`) with your
   * `__Type__Transaction` seek, so every probe reads the same snapshot (a listing racing a commit
   * shows all of it or none: the concurrency tests check this) and a listing costs O(children)
   * probes, not O(subtree). Replace it with one statement of your own if the database can walk
   * the index itself (PostgreSQL's recursive CTE), keeping the same answers.
   */
  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    validateListPage(prefix, after, limit, this.type);
    this.assertOpen();
    return this.transaction((tx) => tx.listPage(prefix, after, limit), { readOnly: true });
  }

  /**
   * Every key that starts with `prefix`, with its value, in UTF-8 byte order, as ONE consistent
   * snapshot (a concurrent transaction is seen whole or not at all), read in pages. The snapshot
   * is released when the caller's loop ends or breaks (the `finally` below).
   * Conformance: scan, byte order, the concurrency tests' scans racing writers.
   */
  async *scan(prefix: string): AsyncGenerator<ScanEntry> {
    validatePrefix(prefix, this.type);
    this.assertOpen();
    // TODO: open a read snapshot here (a read-only transaction, a pinned revision, …).
    try {
      const before = prefixSuccessor(prefix);
      let probe: KeySeek = { from: prefix, inclusive: true, before, limit: SCAN_PAGE_SIZE };
      for (;;) {
        this.assertOpen();
        const page = await this.#scanPage(probe);
        for (const entry of page) yield entry;
        const last = page[page.length - 1];
        if (page.length < probe.limit || last === undefined) return;
        probe = { from: last.key, inclusive: false, before, limit: SCAN_PAGE_SIZE };
      }
    } finally {
      // TODO: release the snapshot.
    }
  }

  /**
   * One page of a scan, from the scan's snapshot: up to `probe.limit` entries, in key order, whose
   * keys are `>= probe.from` (`>` when `probe.inclusive` is false) and `< probe.before` (no upper
   * bound when it is null). Range reads on the key index, never `LIKE`/pattern matching: `%`,
   * `_` and `\` are ordinary key characters.
   */
  async #scanPage(probe: KeySeek): Promise<ScanEntry[]> {
    // TODO: read the page.
    throw notImplemented("__Type__Backend.scan() (its page read)", probe);
  }

  /**
   * Runs `fn` in a transaction: commits when it resolves, rolls back when it throws (the
   * callback's own error reaches the caller unchanged). Serialization conflicts (`CONFLICT`)
   * run `fn` again, a bounded number of times. Plumbing around `__Type__Transaction`:
   * `begin`, `commit` and `rollback` there are yours to write.
   * Conformance: transactions (isolation, read-your-writes, `READ_ONLY`, `CLOSED` after settling),
   * concurrency (no lost update, no torn read), and the audit rows of `appendAudit`.
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.assertOpen();
    const readOnly = options.readOnly === true;
    return withRetries(
      async () => {
        const tx = await __Type__Transaction.begin(this, readOnly);
        let result: T;
        try {
          result = await fn(tx);
        } catch (error) {
          tx.settle();
          await tx.rollback();
          throw error;
        }
        tx.settle();
        await tx.commit();
        return result;
      },
      // Only conflicts: any other failure (a lost connection at commit) may have committed.
      { shouldRetry: (error) => StorageError.isInstance(error, StorageErrorCode.CONFLICT) },
    );
  }

  /**
   * A time-boxed probe of the database (a ping, a trivial read), with its latency. It never
   * throws: a failure is `{ status: "unhealthy", error }`, with no secret in `error`. The server
   * calls it every few seconds and reports it in `/v1/sys/health`.
   */
  async health(): Promise<HealthStatus> {
    const started = performance.now();
    if (this.#closed) return { status: "unhealthy", latencyMs: performance.now() - started, error: "closed" };
    // TODO: probe the database with a timeout, catch every error, and return
    // `{ status: "healthy", latencyMs: performance.now() - started }`. (Only this template throws here.)
    throw notImplemented("__Type__Backend.health()");
  }

  /**
   * Releases connections. Idempotent, also when called concurrently (every call waits for the
   * one release); later calls of every other member fail with `CLOSED`.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#release();
    return this.#closing;
  }

  async #release(): Promise<void> {
    // TODO: close the connection or pool, and wait for it.
  }

  /** Throws `CLOSED` once `close()` was called. */
  assertOpen(): void {
    if (this.#closed) throw new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: this.type });
  }
}
