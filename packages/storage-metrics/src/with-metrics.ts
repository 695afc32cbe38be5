import { performance } from "node:perf_hooks";
import { StorageError, wrapStorage } from "@egide/storage-core";
import type {
  AuditStore,
  AuditingBackend,
  AuditingTransaction,
  ScanEntry,
  StorageBackend,
  Transaction,
  TransactionOptions,
  TransactionOverrides,
} from "@egide/storage-core";
import type { Counter, Histogram, Registry } from "prom-client";
import { storageMetrics } from "./storage-metrics.js";
import type { ConnectionSource, StorageMetrics } from "./storage-metrics.js";

/** The operations recorded, as the `operation` label spells them. */
export const StorageOperation = {
  GET: "get",
  /** `getMany`, on the backend or in a transaction: one operation, however many keys. */
  GET_MANY: "get_many",
  PUT: "put",
  DELETE: "delete",
  EXISTS: "exists",
  LIST: "list",
  LIST_PAGE: "list_page",
  SCAN: "scan",
  TRANSACTION: "transaction",
  HEALTH: "health",
  AUDIT_APPEND: "audit_append",
  AUDIT_QUERY: "audit_query",
} as const;

/** One of {@link StorageOperation}'s values. */
export type StorageOperation = (typeof StorageOperation)[keyof typeof StorageOperation];

/** Options of {@link withMetrics}. */
export interface WithMetricsOptions {
  /** Where the metrics are registered. Default: prom-client's default registry. */
  registry?: Registry;
  /** The `backend` label. Default: the backend's `type`. */
  backendLabel?: string;
  /** Histogram buckets in seconds, used when this registry's metrics are first created. */
  buckets?: readonly number[];
  /**
   * Active connections, read at every scrape. Default: `active` from the backend's
   * `poolStats()` when it has one (PostgreSQL); backends without a pool report nothing.
   */
  activeConnections?: () => number | undefined;
}

interface PoolStatsHolder {
  poolStats(): { active: number };
}

/**
 * Wraps `backend` so that every operation is counted (`egide_storage_operations_total`),
 * timed (`egide_storage_operation_duration_seconds`) and, when it fails, counted by error code
 * (`egide_storage_errors_total`), labelled by backend type and operation; operations inside a
 * transaction are recorded like the same operations outside one, and the transaction itself
 * as `transaction`. `egide_storage_connections_active` reports the backend's pool at scrape
 * time. A backend with an audit store keeps it, recorded too (`audit_append`, `audit_query`).
 * The wrapper is itself a `StorageBackend` (built with `wrapStorage`) and changes no behaviour:
 * results and errors pass through untouched, and it offers exactly the optional capabilities of
 * the backend it wraps (`getMany`, `putMany` and `appendAudit` in transactions, `audit` and its
 * `appendMany`, `poolStats()`, `getMany()`, `subscribeChanges()`), no more and no fewer. A
 * `getMany` is one `get_many` operation; the change feed is forwarded unmetered (a
 * subscription is not a storage operation, and its deliveries happen inside the writes that
 * are recorded already).
 */
export function withMetrics(backend: AuditingBackend, options?: WithMetricsOptions): AuditingBackend;
export function withMetrics(backend: StorageBackend, options?: WithMetricsOptions): StorageBackend;
export function withMetrics(backend: StorageBackend, options: WithMetricsOptions = {}): StorageBackend {
  const metrics = storageMetrics(options.registry, options.buckets);
  const label = options.backendLabel ?? backend.type;
  const active = options.activeConnections ?? poolActive(backend);
  let source: ConnectionSource | undefined;
  if (active) {
    source = { backend: label, active };
    metrics.connectionSources.add(source);
  }
  return meteredBackend(backend, new OperationRecorder(metrics, label), () => {
    if (source) metrics.connectionSources.delete(source);
  });
}

function poolActive(backend: StorageBackend): (() => number | undefined) | undefined {
  const holder = backend as Partial<PoolStatsHolder>;
  if (typeof holder.poolStats !== "function") return undefined;
  return () => (backend as unknown as PoolStatsHolder).poolStats().active;
}

interface OperationChildren {
  operations: Counter.Internal;
  duration: Histogram.Internal<"backend" | "operation">;
}

/**
 * The label children of one backend, resolved once per operation: prom-client hashes the
 * label set on every `inc(labels)`, which would cost more than a SQLite read.
 */
class OperationRecorder {
  readonly #metrics: StorageMetrics;
  readonly #backend: string;
  readonly #children = new Map<StorageOperation, OperationChildren>();

  constructor(metrics: StorageMetrics, backend: string) {
    this.#metrics = metrics;
    this.#backend = backend;
  }

  /** Records a finished operation that started at `started` (performance.now()). */
  done(operation: StorageOperation, started: number): void {
    const children = this.#childrenOf(operation);
    children.operations.inc();
    children.duration.observe((performance.now() - started) / 1000);
  }

  /** Records a failed operation and its error code. */
  failed(operation: StorageOperation, started: number, error: unknown): void {
    this.done(operation, started);
    const code = StorageError.isInstance(error) ? error.code : errorCode(error);
    this.#metrics.errors.labels(this.#backend, operation, code).inc();
  }

  /** Wraps a promise-returning call. */
  track<T>(operation: StorageOperation, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let pending: Promise<T>;
    try {
      pending = call();
    } catch (error) {
      this.failed(operation, started, error);
      return Promise.reject(error);
    }
    return pending.then(
      (value) => {
        this.done(operation, started);
        return value;
      },
      (error: unknown) => {
        this.failed(operation, started, error);
        throw error;
      },
    );
  }

  #childrenOf(operation: StorageOperation): OperationChildren {
    let children = this.#children.get(operation);
    if (!children) {
      children = {
        operations: this.#metrics.operations.labels(this.#backend, operation),
        duration: this.#metrics.duration.labels(this.#backend, operation),
      };
      this.#children.set(operation, children);
    }
    return children;
  }
}

// Errors that are not StorageErrors (a TypeError for a non-string key, say) are labelled by
// their class, which keeps the label set small and says what kind of mistake it was.
function errorCode(error: unknown): string {
  return error instanceof Error ? error.name : "UNKNOWN";
}

/**
 * The decorator's overrides: the operations a backend and its transactions share (the six
 * required ones and the optional `getMany`), each recorded under its own label (the same names
 * inside a transaction as outside), plus scan, transaction, health, close and the audit store.
 * Everything else, `poolStats()` and `subscribeChanges()` included, is forwarded by
 * `wrapStorage`, which also keeps each optional capability (`getMany`, `putMany`,
 * `appendAudit`, `audit`, `appendMany`, `poolStats`, `subscribeChanges`) exactly when the
 * backend has it: the `getMany` override is used only where `inner` has one.
 */
function meteredOperations(inner: Transaction | StorageBackend, recorder: OperationRecorder): TransactionOverrides {
  return {
    get: (key) => recorder.track(StorageOperation.GET, () => inner.get(key)),
    getMany: (keys) =>
      recorder.track(StorageOperation.GET_MANY, () => (inner.getMany as NonNullable<Transaction["getMany"]>).call(inner, keys)),
    put: (key, value) => recorder.track(StorageOperation.PUT, () => inner.put(key, value)),
    delete: (key) => recorder.track(StorageOperation.DELETE, () => inner.delete(key)),
    exists: (key) => recorder.track(StorageOperation.EXISTS, () => inner.exists(key)),
    list: (prefix) => recorder.track(StorageOperation.LIST, () => inner.list(prefix)),
    listPage: (prefix, after, limit) => recorder.track(StorageOperation.LIST_PAGE, () => inner.listPage(prefix, after, limit)),
  };
}

function meteredBackend(inner: StorageBackend, recorder: OperationRecorder, release: () => void): StorageBackend {
  return wrapStorage(inner, {
    ...meteredOperations(inner, recorder),

    /** One `scan` operation, timed from the first read to the end of the iteration (or its failure). */
    async *scan(prefix: string): AsyncIterable<ScanEntry> {
      const started = performance.now();
      let failed = false;
      try {
        yield* inner.scan(prefix);
      } catch (error) {
        failed = true;
        recorder.failed(StorageOperation.SCAN, started, error);
        throw error;
      } finally {
        // Ended normally or by `break`/`return()`: one completed operation.
        if (!failed) recorder.done(StorageOperation.SCAN, started);
      }
    },

    transaction: <T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T> =>
      recorder.track(StorageOperation.TRANSACTION, () => inner.transaction(fn, options)),

    health: () => recorder.track(StorageOperation.HEALTH, () => inner.health()),

    close: () => {
      release();
      return inner.close();
    },

    wrapTransaction: (tx) => ({
      ...meteredOperations(tx, recorder),
      /** A bulk put (restore, migrate) is recorded as one `put`. */
      putMany: (entries) =>
        recorder.track(StorageOperation.PUT, () => (tx.putMany as NonNullable<Transaction["putMany"]>).call(tx, entries)),
      appendAudit: (entry) => recorder.track(StorageOperation.AUDIT_APPEND, () => (tx as AuditingTransaction).appendAudit(entry)),
    }),

    wrapAudit: (audit) => ({
      append: (entry) => recorder.track(StorageOperation.AUDIT_APPEND, () => audit.append(entry)),
      query: (filter) => recorder.track(StorageOperation.AUDIT_QUERY, () => audit.query(filter)),
      appendMany: (entries) =>
        recorder.track(StorageOperation.AUDIT_APPEND, () =>
          (audit.appendMany as NonNullable<AuditStore["appendMany"]>).call(audit, entries),
        ),
    }),
  });
}
