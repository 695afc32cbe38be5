import { performance } from "node:perf_hooks";
import { StorageError, StorageErrorCode, isAuditingTransaction, putEntries } from "@egide/storage-core";
import type {
  AuditEntry,
  AuditQuery,
  AuditRecord,
  AuditStore,
  AuditingBackend,
  AuditingTransaction,
  HealthStatus,
  ScanEntry,
  StorageBackend,
  Transaction,
  TransactionOptions,
} from "@egide/storage-core";
import type { Counter, Histogram, Registry } from "prom-client";
import { storageMetrics } from "./storage-metrics.js";
import type { ConnectionSource, StorageMetrics } from "./storage-metrics.js";

/** The operations recorded, as the `operation` label spells them. */
export const StorageOperation = {
  GET: "get",
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
 * time. A backend with an audit store keeps it, recorded too (`audit_append`, `audit_query`). The wrapper is itself a `StorageBackend` and changes no behaviour: results and errors
 * pass through untouched.
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
  return new MeteredBackend(backend, new OperationRecorder(metrics, label), () => {
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
 * The six operations a backend and its transactions share, each recorded under its own label:
 * the same names inside a transaction as outside.
 */
class MeteredOperations<TInner extends Transaction> implements Transaction {
  protected readonly inner: TInner;
  protected readonly recorder: OperationRecorder;

  constructor(inner: TInner, recorder: OperationRecorder) {
    this.inner = inner;
    this.recorder = recorder;
  }

  get(key: string): Promise<Buffer | null> {
    return this.recorder.track(StorageOperation.GET, () => this.inner.get(key));
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.recorder.track(StorageOperation.PUT, () => this.inner.put(key, value));
  }

  delete(key: string): Promise<void> {
    return this.recorder.track(StorageOperation.DELETE, () => this.inner.delete(key));
  }

  exists(key: string): Promise<boolean> {
    return this.recorder.track(StorageOperation.EXISTS, () => this.inner.exists(key));
  }

  list(prefix: string): Promise<string[]> {
    return this.recorder.track(StorageOperation.LIST, () => this.inner.list(prefix));
  }

  listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    return this.recorder.track(StorageOperation.LIST_PAGE, () => this.inner.listPage(prefix, after, limit));
  }
}

class MeteredBackend extends MeteredOperations<StorageBackend> implements StorageBackend {
  readonly type: string;
  /** The inner backend's audit store, recorded; absent when the inner backend has none. */
  readonly audit?: AuditStore;
  readonly #release: () => void;

  constructor(inner: StorageBackend, recorder: OperationRecorder, release: () => void) {
    super(inner, recorder);
    this.type = inner.type;
    this.#release = release;
    const audit = (inner as Partial<AuditingBackend>).audit;
    if (audit) {
      this.audit = {
        append: (entry: AuditEntry) => recorder.track(StorageOperation.AUDIT_APPEND, () => audit.append(entry)),
        query: (filter?: AuditQuery) => recorder.track(StorageOperation.AUDIT_QUERY, () => audit.query(filter)),
        ...(audit.appendMany
          ? { appendMany: (entries: readonly AuditEntry[]) => recorder.track(StorageOperation.AUDIT_APPEND, () => (audit.appendMany as NonNullable<AuditStore["appendMany"]>)(entries)) }
          : {}),
      };
    }
  }

  /** One `scan` operation, timed from the first read to the end of the iteration (or its failure). */
  async *scan(prefix: string): AsyncIterable<ScanEntry> {
    const started = performance.now();
    let failed = false;
    try {
      yield* this.inner.scan(prefix);
    } catch (error) {
      failed = true;
      this.recorder.failed(StorageOperation.SCAN, started, error);
      throw error;
    } finally {
      // Ended normally or by `break`/`return()`: one completed operation.
      if (!failed) this.recorder.done(StorageOperation.SCAN, started);
    }
  }

  transaction<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T> {
    return this.recorder.track(StorageOperation.TRANSACTION, () => this.inner.transaction((tx) => fn(new MeteredTransaction(tx, this.recorder)), options));
  }

  health(): Promise<HealthStatus> {
    return this.recorder.track(StorageOperation.HEALTH, () => this.inner.health());
  }

  close(): Promise<void> {
    this.#release();
    return this.inner.close();
  }
}

class MeteredTransaction extends MeteredOperations<Transaction> implements AuditingTransaction {
  /** A bulk put (restore, migrate) is recorded as one `put`, passed on as a bulk put when the backend has one. */
  putMany(entries: readonly ScanEntry[]): Promise<void> {
    return this.recorder.track(StorageOperation.PUT, () => putEntries(this.inner, entries));
  }

  appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    return this.recorder.track(StorageOperation.AUDIT_APPEND, () => {
      const inner = this.inner;
      if (!isAuditingTransaction(inner)) {
        return Promise.reject(new StorageError(StorageErrorCode.INTERNAL, "this backend cannot write audit rows in a transaction"));
      }
      return inner.appendAudit(entry);
    });
  }
}
