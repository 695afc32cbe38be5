import { performance } from "node:perf_hooks";
import { CompareResult, CompareTarget } from "etcd3";
import {
  type AuditingBackend,
  type ChangeFeedListener,
  type ChangeFeedSubscription,
  type HealthStatus,
  NETWORK_SEEK_BATCH,
  type ScanEntry,
  StorageError,
  StorageErrorCode,
  type Transaction,
  type TransactionOptions,
  listChildren,
  runSkipScanAsync,
  validateKey,
  validateListPage,
  validatePrefix,
  validateValue,
  withRetries,
} from "@egide/storage-core";
import { EtcdAuditStore } from "./etcd-audit-store.js";
import { type ChangeFeedTiming, EtcdChangeFeed, type EtcdChangeFeedStatus } from "./etcd-change-feed.js";
import { EtcdConnection } from "./etcd-connection.js";
import { EtcdKeyspace, justAfter } from "./etcd-keyspace.js";
import { ListingProber } from "./etcd-listing.js";
import { type EtcdOptions, type ResolvedEtcdOptions, resolveEtcdOptions } from "./etcd-options.js";
import { EtcdStore } from "./etcd-store.js";
import { EtcdTransaction } from "./etcd-transaction.js";
import { ETCD_TYPE } from "./etcd-type.js";

/** Entries a scan reads per range request, at most. */
export const ETCD_SCAN_PAGE_SIZE = 256;
/**
 * The value bytes a scan page aims at: a page holds as many entries as fit at the largest value
 * size seen so far (at first `max_value_bytes`), so that 256 large values never arrive at once.
 */
export const ETCD_SCAN_PAGE_BYTES = 4 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);

/** Options of {@link EtcdBackend.openResolved} beyond the configuration (tests and tuning). */
export interface EtcdBackendInternals {
  /** The change feed's probe timing. */
  changeFeedTiming?: Partial<ChangeFeedTiming>;
}

/**
 * The storage contract on etcd v3 (through the `etcd3` gRPC client), with its audit store in the
 * same etcd. Keys live under the configured prefix (see `EtcdKeyspace`); every read is
 * linearizable; transactions are optimistic etcd `Txn`s (see `EtcdTransaction`); listings are
 * skip-scans of keys-only range requests, costing O(children) round trips.
 */
export class EtcdBackend implements AuditingBackend {
  readonly type = ETCD_TYPE;
  /** The options in force (the password is not enumerable). */
  readonly options: ResolvedEtcdOptions;
  readonly audit: EtcdAuditStore;
  /** The change feed (absent with `change_feed = false`). */
  readonly subscribeChanges?: (listener: ChangeFeedListener) => ChangeFeedSubscription;
  readonly #connection: EtcdConnection;
  readonly #store: EtcdStore;
  readonly #keys: EtcdKeyspace;
  readonly #feed: EtcdChangeFeed | undefined;
  #closing: Promise<void> | undefined;

  private constructor(options: ResolvedEtcdOptions, internals: EtcdBackendInternals) {
    this.options = options;
    this.#connection = new EtcdConnection(options);
    this.#keys = new EtcdKeyspace(options.prefix);
    this.#feed = options.changeFeed ? new EtcdChangeFeed(this.#connection, this.#keys, internals.changeFeedTiming) : undefined;
    this.#store = new EtcdStore(this.#connection, this.#keys, options, this.#feed);
    this.audit = new EtcdAuditStore(this.#store, options.auditRetentionMs);
    const feed = this.#feed;
    if (feed) this.subscribeChanges = (listener) => feed.subscribe(listener);
  }

  /** Opens a backend from programmatic options (see {@link EtcdOptions}). */
  static open(options: EtcdOptions, internals: EtcdBackendInternals = {}): Promise<EtcdBackend> {
    return EtcdBackend.openResolved(resolveEtcdOptions(options), internals);
  }

  /**
   * Opens a backend from resolved options (what `parseConfig` returns). One request is made at
   * once, so that an unreachable cluster, bad credentials or a TLS mismatch fail here with a
   * clear `StorageError` rather than at the first request.
   */
  static async openResolved(options: ResolvedEtcdOptions, internals: EtcdBackendInternals = {}): Promise<EtcdBackend> {
    const backend = new EtcdBackend(options, internals);
    try {
      await backend.#store.range("connect", { key: backend.#keys.deletionMarker, count_only: true });
    } catch (error) {
      await backend.close();
      throw error;
    }
    backend.audit.startRetention();
    return backend;
  }

  async get(key: string): Promise<Buffer | null> {
    validateKey(key, ETCD_TYPE);
    this.#store.checkOpen();
    const response = await this.#store.range("get", { key: this.#keys.dataKey(key) });
    return response.kvs[0]?.value ?? null;
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key, ETCD_TYPE);
    this.#store.checkOpen();
    const response = await this.#store.range("exists", { key: this.#keys.dataKey(key), count_only: true });
    return response.count !== "0";
  }

  /** The values at `keys`, in order (`null` where absent), in one etcd request (one snapshot). */
  async getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    for (const key of keys) validateKey(key, ETCD_TYPE);
    this.#store.checkOpen();
    if (keys.length === 0) return [];
    const { found } = await this.#store.readKeys([...new Set(keys)], undefined);
    return keys.map((key) => found.get(key)?.value ?? null);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    validateKey(key, ETCD_TYPE);
    validateValue(value, this.options.maxValueBytes, ETCD_TYPE);
    this.#store.checkOpen();
    // A copy taken now: the request is encoded later, and may be sent again.
    const stored = Buffer.from(value);
    // One guarded Txn rather than a bare put, so that a lost answer never makes it apply twice (see EtcdStore.apply).
    await this.#store.apply({
      what: "put",
      compares: [],
      ops: [{ request_put: { key: this.#keys.dataKey(key), value: stored } }],
      changed: [key],
    });
  }

  async delete(key: string): Promise<void> {
    validateKey(key, ETCD_TYPE);
    this.#store.checkOpen();
    const etcdKey = this.#keys.dataKey(key);
    // Deleting a present key also rewrites the deletion marker (see EtcdKeyspace), in the same Txn;
    // an absent key makes the compare fail, and there is nothing to do.
    await this.#store.apply({
      what: "delete",
      compares: [{ key: etcdKey, target: CompareTarget.Version, result: CompareResult.Greater, version: 0 }],
      ops: [{ request_delete_range: { key: etcdKey } }, { request_put: { key: this.#keys.deletionMarker, value: EMPTY } }],
      changed: [key],
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.listPage(prefix, "", 0);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    validateListPage(prefix, after, limit, ETCD_TYPE);
    this.#store.checkOpen();
    let revision: string | undefined;
    const prober = new ListingProber(this.#store, limit);
    return runSkipScanAsync(listChildren(prefix, after, limit, NETWORK_SEEK_BATCH), async (probe) => {
      // Every probe after the first reads at the first one's revision: one snapshot.
      const page = await prober.seek(probe, revision);
      revision ??= page.revision;
      return page.kvs.map((kv) => this.#keys.storageKey(kv.key));
    });
  }

  async *scan(prefix: string): AsyncIterable<ScanEntry> {
    validatePrefix(prefix, ETCD_TYPE);
    this.#store.checkOpen();
    const end = this.#keys.dataRangeEnd(prefix);
    let from = this.#keys.dataKey(prefix);
    let revision: string | undefined;
    // The largest value seen (at first the largest allowed); small values let pages grow to 256 entries.
    let largest = this.options.maxValueBytes;
    let seen = 0;
    for (;;) {
      const limit = Math.max(1, Math.min(ETCD_SCAN_PAGE_SIZE, Math.floor(ETCD_SCAN_PAGE_BYTES / Math.max(1024, largest))));
      const response = await this.#store.range("scan", {
        key: from,
        range_end: end,
        limit,
        ...(revision !== undefined ? { revision } : {}),
      });
      revision ??= response.header.revision;
      let pageLargest = 0;
      for (const kv of response.kvs) pageLargest = Math.max(pageLargest, kv.value.length);
      largest = seen === 0 ? pageLargest : Math.max(largest, pageLargest);
      seen += response.kvs.length;
      for (const kv of response.kvs) yield { key: this.#keys.storageKey(kv.key), value: kv.value };
      const last = response.kvs[response.kvs.length - 1];
      if (!response.more || last === undefined) return;
      from = justAfter(last.key);
    }
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#store.checkOpen();
    const readOnly = options.readOnly === true;
    return withRetries(
      async () => {
        this.#store.checkOpen();
        const tx = new EtcdTransaction(this.#store, this.audit, readOnly);
        let result: T;
        try {
          result = await fn(tx);
        } finally {
          tx.close();
        }
        await tx.commit();
        return result;
      },
      {
        attempts: this.options.transactionAttempts,
        baseDelayMs: 5,
        maxDelayMs: 100,
        // Only conflicts run the callback again; other failures were retried where they happened.
        shouldRetry: (error) => StorageError.isInstance(error, StorageErrorCode.CONFLICT) && error.retryable,
      },
    );
  }

  async health(): Promise<HealthStatus> {
    const started = performance.now();
    const latencyMs = () => performance.now() - started;
    if (this.#connection.closed) return { status: "unhealthy", latencyMs: latencyMs(), error: "backend is closed" };
    try {
      await this.#connection.run(
        "health",
        (options) => this.#connection.kv.range({ key: this.#keys.deletionMarker, count_only: true }, options),
        { budgetMs: this.options.dialTimeoutMs },
      );
      return { status: "healthy", latencyMs: latencyMs() };
    } catch (error) {
      return { status: "unhealthy", latencyMs: latencyMs(), error: (error as Error).message };
    }
  }

  /** The change feed's state (undefined with `change_feed = false`). */
  changeFeedStatus(): EtcdChangeFeedStatus | undefined {
    return this.#feed?.status();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#connection.refuseCalls();
      this.audit.stop();
      this.#feed?.close();
      await this.#store.dropWitnesses().catch(() => undefined);
      this.#connection.close();
    })();
    return this.#closing;
  }
}
