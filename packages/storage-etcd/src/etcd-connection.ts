import { Etcd3, type IOptions, type KVClient } from "etcd3";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { type EtcdFailure, classifyEtcdError } from "./etcd-errors.js";
import type { ResolvedEtcdOptions } from "./etcd-options.js";
import { ETCD_TYPE } from "./etcd-type.js";

/** gRPC call options, as the etcd3 client takes them. */
export type CallOptions = NonNullable<Parameters<KVClient["range"]>[1]>;
type Policy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

// etcd3's default fault handling retries three times inside the client and opens a circuit
// breaker per host; retries here are the adapter's own (bounded by request_timeout, aware of
// which requests are safe to send again), so the client's policies only pass calls through.
const NEVER_ABORTED = new AbortController().signal;
// Asynchronous, so that a throwing call becomes a rejection: etcd3 runs a stream's failure
// through the host policy from an 'error' listener and only catches rejections.
const PASS_THROUGH = {
  execute: async (fn: (context: { signal: AbortSignal }) => unknown) => fn({ signal: NEVER_ABORTED }),
} as unknown as Policy;

/** Options of {@link EtcdConnection.run}. */
export interface RunSettings {
  /** The time allowed, retries included (default: request_timeout). */
  budgetMs?: number;
  /** Told of every failed attempt (the commit uses it to know whether a write may have landed). */
  onFailure?: (failure: EtcdFailure) => void;
}

/**
 * The etcd3 client with this adapter's deadlines and retries: each attempt goes to one member
 * (chosen at random by etcd3) with a deadline of at most `dial_timeout`; a transient failure
 * is tried again after a jittered backoff, on another member when there are several, until
 * `request_timeout` has passed; every error leaves as a `StorageError`.
 */
export class EtcdConnection {
  readonly client: Etcd3;
  readonly kv: KVClient;
  readonly #options: ResolvedEtcdOptions;
  #closed = false;

  constructor(options: ResolvedEtcdOptions) {
    this.#options = options;
    const credentials =
      options.tls && (options.tlsCa || options.tlsCert)
        ? {
            // Without a CA file the system's roots verify the members.
            rootCertificate: options.tlsCa as Buffer,
            ...(options.tlsKey ? { privateKey: options.tlsKey } : {}),
            ...(options.tlsCert ? { certChain: options.tlsCert } : {}),
          }
        : undefined;
    this.client = new Etcd3({
      hosts: options.endpoints,
      ...(credentials ? { credentials } : {}),
      ...(options.username !== undefined
        ? {
            auth: {
              username: options.username,
              password: options.password ?? "",
              callOptions: () => ({ deadline: Date.now() + options.dialTimeoutMs }),
            },
          }
        : {}),
      grpcOptions: {
        // Scans read pages of values up to max_value_bytes each: no client-side cap below etcd's.
        "grpc.max_receive_message_length": -1,
        "grpc.max_send_message_length": -1,
        // A member that comes back is reconnected to within a second, not after gRPC's 2-minute backoff.
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
      },
      faultHandling: { host: () => PASS_THROUGH, global: PASS_THROUGH },
    });
    this.kv = this.client.kv;
  }

  /** The longest one attempt may take (`dial_timeout`). */
  get dialTimeoutMs(): number {
    return this.#options.dialTimeoutMs;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The error every call after close gets. */
  closedError(): StorageError {
    return new StorageError(StorageErrorCode.CLOSED, "backend is closed", { backend: ETCD_TYPE });
  }

  /** Turns any error of the client into a StorageError (see `classifyEtcdError`). */
  classify(error: unknown, what: string): EtcdFailure {
    return classifyEtcdError(error, { what, closed: this.#closed, username: this.#options.username, prefix: this.#options.prefix });
  }

  /**
   * Runs `call` (one gRPC request, given its call options) until it succeeds, fails with a
   * non-transient error, or the budget is spent; then its last error leaves as a StorageError.
   * Only for requests that may be sent again: reads, puts, deletes, and transactions whose
   * compares make a second application impossible or harmless.
   */
  async run<T>(what: string, call: (options: CallOptions) => Promise<T>, settings: RunSettings = {}): Promise<T> {
    const budget = settings.budgetMs ?? this.#options.requestTimeoutMs;
    const started = Date.now();
    const end = started + budget;
    let delay = 20;
    for (let attempt = 1; ; attempt++) {
      if (this.#closed) throw this.closedError();
      const now = Date.now();
      try {
        return await call({ deadline: Math.min(end, now + this.#options.dialTimeoutMs) });
      } catch (error) {
        const failure = this.classify(error, what);
        settings.onFailure?.(failure);
        if (!failure.error.retryable || failure.error.code === StorageErrorCode.CONFLICT) throw failure.error;
        const wait = delay / 2 + Math.random() * (delay / 2);
        delay = Math.min(500, delay * 2);
        if (Date.now() + wait >= end) throw this.#gaveUp(failure, attempt, Date.now() - started);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  /** Refuses every later call with `CLOSED`, leaving the channels open for a last cleanup. */
  refuseCalls(): void {
    this.#closed = true;
  }

  /** Closes the client's channels. Calls in flight fail (as `CLOSED`). Idempotent. */
  close(): void {
    this.#closed = true;
    this.client.close();
  }

  #gaveUp(failure: EtcdFailure, attempts: number, elapsedMs: number): StorageError {
    const last = failure.error;
    const endpoints = this.#options.endpoints.join(", ");
    return new StorageError(
      last.code,
      `${last.message.replace(/^etcd: /, "")} (gave up after ${attempts} attempt${attempts === 1 ? "" : "s"} in ${elapsedMs} ms; endpoints ${endpoints})`,
      { backend: ETCD_TYPE, cause: last, retryable: true },
    );
  }
}
