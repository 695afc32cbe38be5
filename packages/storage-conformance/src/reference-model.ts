import {
  ChangeFeedHub,
  DEFAULT_MAX_VALUE_BYTES,
  StorageError,
  StorageErrorCode,
  compareKeys,
  validateKey,
  validatePrefix,
  validateValue,
} from "@egide/storage-core";
import type {
  ChangeFeedListener,
  ChangeFeedSubscription,
  HealthStatus,
  ScanEntry,
  StorageBackend,
  Transaction,
  TransactionOptions,
} from "@egide/storage-core";
import { naiveChildren, naivePage } from "./naive-list.js";
import { ReferenceTransaction } from "./reference-transaction.js";

/** Options of {@link ReferenceModel}. */
export interface ReferenceModelOptions {
  /** The largest value accepted, in bytes (default `DEFAULT_MAX_VALUE_BYTES`). */
  maxValueBytes?: number;
  /** Offer `getMany` on the model and in its transactions (default: not offered). */
  getMany?: boolean;
  /** Offer `subscribeChanges`, an in-process change feed that is live at once (default: not offered). */
  changeFeed?: boolean;
}

const TYPE = "reference";

/**
 * An in-memory {@link StorageBackend} written to be obviously right rather than fast: the model
 * the differential test compares real backends against, and a handy fake for unit tests.
 *
 * - Listing filters every key (see `naiveChildren`), independent of storage-core's skip-scan.
 * - Writers (plain writes and transactions) run one at a time behind an async mutex, so no
 *   update is lost and a transaction's reads are a stable snapshot. Outside reads do not wait:
 *   they see the committed map, which a commit changes in one synchronous step.
 * - Calling the model's own write methods from inside a transaction callback deadlocks, as it
 *   would on a single-writer database: use the `tx` object.
 * - The optional `getMany` and `subscribeChanges` exist only when asked for in the options, so
 *   the model can stand for a backend with or without them. `getMany` reads the committed map
 *   in one synchronous step; the feed publishes each commit's keys before the write resolves.
 */
export class ReferenceModel implements StorageBackend {
  readonly type = TYPE;
  readonly #maxValueBytes: number;
  readonly #data = new Map<string, Buffer>();
  #closed = false;
  // The tail of the writer queue; each writer waits for the previous one.
  #writerTail: Promise<unknown> = Promise.resolve();
  readonly #withGetMany: boolean;
  // Only with `changeFeed`: a backend without the feed has nothing to publish to.
  readonly #feed: ChangeFeedHub | undefined;

  /** Present only when the model was created with `getMany: true`. */
  declare readonly getMany?: (keys: readonly string[]) => Promise<(Buffer | null)[]>;
  /** Present only when the model was created with `changeFeed: true`. */
  declare readonly subscribeChanges?: (listener: ChangeFeedListener) => ChangeFeedSubscription;

  constructor(options: ReferenceModelOptions = {}) {
    this.#maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.#withGetMany = options.getMany === true;
    const self = this as { -readonly [K in "getMany" | "subscribeChanges"]?: ReferenceModel[K] };
    if (this.#withGetMany) self.getMany = (keys) => this.#getMany(keys);
    if (options.changeFeed === true) {
      const feed = new ChangeFeedHub();
      // Every commit happens in this process, so the feed is complete from the start.
      feed.setLive(true);
      this.#feed = feed;
      self.subscribeChanges = (listener) => feed.subscribe(listener);
    }
  }

  async #getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    this.#assertOpen();
    for (const key of keys) validateKey(key, TYPE);
    // One synchronous pass over the committed map: a commit cannot land halfway.
    return keys.map((key) => {
      const value = this.#data.get(key);
      return value ? Buffer.from(value) : null;
    });
  }

  async get(key: string): Promise<Buffer | null> {
    this.#assertOpen();
    validateKey(key, TYPE);
    const value = this.#data.get(key);
    return value ? Buffer.from(value) : null;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#assertOpen();
    validateKey(key, TYPE);
    validateValue(value, this.#maxValueBytes, TYPE);
    // Copied before waiting for the writer queue: the caller may reuse its buffer at once.
    const stored = Buffer.from(value);
    await this.#exclusive(async () => {
      this.#data.set(key, stored);
      this.#feed?.publish([key]);
    });
  }

  async delete(key: string): Promise<void> {
    this.#assertOpen();
    validateKey(key, TYPE);
    await this.#exclusive(async () => {
      this.#data.delete(key);
      this.#feed?.publish([key]);
    });
  }

  async exists(key: string): Promise<boolean> {
    this.#assertOpen();
    validateKey(key, TYPE);
    return this.#data.has(key);
  }

  async list(prefix: string): Promise<string[]> {
    this.#assertOpen();
    validatePrefix(prefix, TYPE);
    return naiveChildren(this.#data.keys(), prefix);
  }

  async listPage(prefix: string, after: string, limit: number): Promise<string[]> {
    this.#assertOpen();
    validatePrefix(prefix, TYPE);
    return naivePage(naiveChildren(this.#data.keys(), prefix), after, limit);
  }

  scan(prefix: string): AsyncIterable<ScanEntry> {
    return this.#scan(prefix);
  }

  async *#scan(prefix: string): AsyncGenerator<ScanEntry> {
    this.#assertOpen();
    validatePrefix(prefix, TYPE);
    const keys = [...this.#data.keys()].filter((key) => key.startsWith(prefix)).sort(compareKeys);
    for (const key of keys) {
      this.#assertOpen();
      // Like a paged scan, a key deleted after the scan started is skipped, not resurrected.
      const value = this.#data.get(key);
      if (value !== undefined) yield { key, value: Buffer.from(value) };
    }
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#assertOpen();
    const readOnly = options.readOnly === true;
    return this.#exclusive(async () => {
      const tx = new ReferenceTransaction(this.#data, readOnly, this.#maxValueBytes, TYPE, this.#withGetMany);
      let result: T;
      try {
        result = await fn(tx);
      } finally {
        // Settled before anything else happens, so a leaked `tx` fails from now on.
        tx.settle();
      }
      // A backend closed while the callback ran cannot commit.
      this.#assertOpen();
      for (const [key, value] of tx.overlay) {
        if (value === null) this.#data.delete(key);
        else this.#data.set(key, value);
      }
      if (tx.overlay.size > 0) this.#feed?.publish([...tx.overlay.keys()]);
      return result;
    });
  }

  async health(): Promise<HealthStatus> {
    const started = performance.now();
    if (this.#closed) return { status: "unhealthy", latencyMs: performance.now() - started, error: "closed" };
    return { status: "healthy", latencyMs: performance.now() - started };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#feed?.close();
  }

  /** Runs `fn` after every earlier writer has finished; a failing writer does not block later ones. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#writerTail.then(() => {
      this.#assertOpen();
      return fn();
    });
    this.#writerTail = run.catch(() => undefined);
    return run;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: TYPE });
  }
}
