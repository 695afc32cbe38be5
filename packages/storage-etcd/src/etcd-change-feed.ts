import type { IDuplexStream, IWatchRequest, IWatchResponse } from "etcd3";
import { type ChangeFeedListener, ChangeFeedHub, type ChangeFeedSubscription, compareKeys } from "@egide/storage-core";
import type { EtcdConnection } from "./etcd-connection.js";
import type { EtcdKeyspace } from "./etcd-keyspace.js";

/** Timing of the feed's liveness probe. */
export interface ChangeFeedTiming {
  /** How often a progress request is sent on the watch stream (default 250 ms). */
  probeIntervalMs: number;
  /** How long the stream may stay silent before the feed is not live and reconnects (default 1000 ms). */
  probeTimeoutMs: number;
}

/** What the feed reports for health checks and metrics. */
export interface EtcdChangeFeedStatus {
  live: boolean;
  subscribers: number;
  /** Watch streams opened after the first (each after a lost one). */
  reconnects: number;
  /** Why the last stream was lost, if one was. */
  lastError: string | undefined;
}

/** Revisions remembered to tell own commits from others' (a bound, not a target). */
const REMEMBERED_REVISIONS = 4096;

/**
 * The change feed over an etcd watch of the data keys (`P` + `kv/`), opened while someone
 * subscribes:
 *
 * - Every commit made elsewhere arrives as watch events of one revision, published as one
 *   change with its keys (sorted), in revision order. Commits of this backend object are
 *   published by the writer itself before its write resolves (`committed`), and their events
 *   are then dropped; an event that overtakes the writer's own response is published from the
 *   watch and the writer's publication is dropped instead, so each commit is told once.
 * - Liveness: the watch stream is asked for progress every 250 ms (etcd answers on the same
 *   stream); the feed is live from the watch's creation until the oldest unanswered request is a
 *   second old (judged after the answers already received are handled, and never across a stall
 *   of this process's event loop), the stream fails, or the member loses its leader (the stream
 *   requires one). Then it
 *   reconnects (50 ms doubling to 1 s) and is live again once the new watch is created. Missed
 *   changes are not replayed: the new watch starts at the current revision.
 */
export class EtcdChangeFeed {
  readonly #hub: ChangeFeedHub;
  readonly #connection: EtcdConnection;
  readonly #keys: EtcdKeyspace;
  readonly #timing: ChangeFeedTiming;
  /** Revisions this object published itself, whose watch events are to be dropped. */
  readonly #own = new Set<number>();
  /** Revisions the watch published, which the writer must not publish again. */
  readonly #seen = new Set<number>();
  #wanted = false;
  #generation = 0;
  #stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  #probe: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  /** When the oldest progress request not answered yet was sent (undefined: all answered). */
  #unansweredSince: number | undefined;
  /** When the probe timer last fired. */
  #lastTick = 0;
  #backoff = 50;
  #opened = 0;
  #lastError: string | undefined;

  constructor(connection: EtcdConnection, keys: EtcdKeyspace, timing: Partial<ChangeFeedTiming> = {}) {
    this.#connection = connection;
    this.#keys = keys;
    this.#timing = { probeIntervalMs: timing.probeIntervalMs ?? 250, probeTimeoutMs: timing.probeTimeoutMs ?? 1000 };
    this.#hub = new ChangeFeedHub((wanted) => (wanted ? this.#start() : this.#stop()));
  }

  /** Subscribes `listener` (see `StorageBackend.subscribeChanges`). */
  subscribe(listener: ChangeFeedListener): ChangeFeedSubscription {
    return this.#hub.subscribe(listener);
  }

  /** The feed's state now. */
  status(): EtcdChangeFeedStatus {
    return {
      live: this.#hub.live,
      subscribers: this.#hub.subscribers,
      reconnects: Math.max(0, this.#opened - 1),
      lastError: this.#lastError,
    };
  }

  /**
   * A commit of this backend object at `revision` changed `keys`: tell the subscribers now,
   * before the write resolves (unless the watch was quicker).
   */
  committed(revision: number, keys: readonly string[]): void {
    if (keys.length === 0 || this.#hub.subscribers === 0) return;
    if (this.#seen.delete(revision)) return;
    remember(this.#own, revision);
    this.#hub.publish(keys);
  }

  /** Ends the feed: subscribers are told it is no longer live. */
  close(): void {
    this.#stop();
    this.#hub.close();
  }

  #start(): void {
    this.#wanted = true;
    this.#backoff = 50;
    void this.#open();
  }

  #stop(): void {
    this.#wanted = false;
    this.#generation += 1;
    this.#teardown();
    this.#hub.setLive(false);
  }

  async #open(): Promise<void> {
    const generation = ++this.#generation;
    let stream: IDuplexStream<IWatchRequest, IWatchResponse>;
    try {
      stream = await this.#connection.client.watchClient.watch({ interceptors: [requireLeader] });
    } catch (error) {
      this.#lost(generation, error);
      return;
    }
    if (generation !== this.#generation) {
      stream.on("error", () => undefined);
      stream.cancel();
      return;
    }
    this.#opened += 1;
    this.#stream = stream;
    this.#unansweredSince = undefined;
    this.#lastTick = Date.now();
    stream.on("data", (response: IWatchResponse) => this.#answer(generation, response));
    stream.on("error", (error: unknown) => this.#lost(generation, error));
    stream.on("end", () => this.#lost(generation, new Error("the watch stream ended")));
    stream.write({ create_request: { key: this.#keys.dataPrefix, range_end: this.#keys.dataEnd } });
    this.#probe = setInterval(() => {
      const now = Date.now();
      // A tick far later than its interval means this process stalled (synchronous work, a GC
      // pause, CPU starvation): the silence measured across the stall is its own, not etcd's,
      // so the probe in flight gets a whole timeout from now.
      if (now - this.#lastTick > 2 * this.#timing.probeIntervalMs && this.#unansweredSince !== undefined) this.#unansweredSince = now;
      this.#lastTick = now;
      // Judged after the answers already received are handled (I/O callbacks run before setImmediate's).
      setImmediate(() => {
        if (generation !== this.#generation) return;
        const since = this.#unansweredSince;
        if (since !== undefined && Date.now() - since > this.#timing.probeTimeoutMs) {
          this.#lost(generation, new Error(`the watch stream did not answer a progress request within ${this.#timing.probeTimeoutMs} ms`));
          return;
        }
        stream.write({ progress_request: {} });
        this.#unansweredSince ??= Date.now();
      });
    }, this.#timing.probeIntervalMs);
    this.#probe.unref();
  }

  #answer(generation: number, response: IWatchResponse): void {
    if (generation !== this.#generation) return;
    this.#unansweredSince = undefined;
    if (response.canceled) {
      this.#lost(generation, new Error(`etcd canceled the watch: ${response.cancel_reason || "no reason given"}`));
      return;
    }
    if (response.created) {
      this.#backoff = 50;
      this.#hub.setLive(true);
    }
    let revision = -1;
    let keys: string[] = [];
    const flush = () => {
      if (keys.length === 0) return;
      if (!this.#own.delete(revision)) {
        remember(this.#seen, revision);
        this.#hub.publish([...new Set(keys)].sort(compareKeys));
      }
      keys = [];
    };
    for (const event of response.events ?? []) {
      const eventRevision = Number(event.kv.mod_revision);
      if (eventRevision !== revision) {
        flush();
        revision = eventRevision;
      }
      keys.push(this.#keys.storageKey(event.kv.key));
    }
    flush();
  }

  #lost(generation: number, error: unknown): void {
    if (generation !== this.#generation) return;
    this.#generation += 1;
    this.#lastError = error instanceof Error ? error.message : String(error);
    this.#teardown();
    this.#hub.setLive(false);
    if (!this.#wanted || this.#connection.closed) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(1000, this.#backoff * 2);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#wanted && !this.#connection.closed) void this.#open();
    }, delay);
    this.#retry.unref();
  }

  #teardown(): void {
    if (this.#probe) clearInterval(this.#probe);
    if (this.#retry) clearTimeout(this.#retry);
    this.#probe = undefined;
    this.#retry = undefined;
    const stream = this.#stream;
    this.#stream = undefined;
    if (stream) {
      stream.on("error", () => undefined);
      stream.cancel();
    }
  }
}

/** Adds `revision` to `set`, forgetting the oldest beyond the bound. */
function remember(set: Set<number>, revision: number): void {
  set.add(revision);
  if (set.size > REMEMBERED_REVISIONS) {
    const oldest = set.values().next().value;
    if (oldest !== undefined) set.delete(oldest);
  }
}

type Interceptor = NonNullable<NonNullable<Parameters<EtcdConnection["client"]["watchClient"]["watch"]>[0]>["interceptors"]>[number];
type InterceptingCall = ReturnType<Interceptor>;

/**
 * A gRPC interceptor adding etcd's `hasleader` metadata (clientv3's `WithRequireLeader`): the
 * member ends the watch when it loses its leader, instead of keeping a stream open that no
 * longer hears of commits. Written with a proxy so the adapter needs no gRPC import of its own.
 */
const requireLeader: Interceptor = (options, nextCall) => {
  const call = nextCall(options);
  return new Proxy(call, {
    get(target, property) {
      if (property === "start") {
        return (metadata: { set(key: string, value: string): void }, listener: unknown) => {
          metadata.set("hasleader", "true");
          (target.start as (metadata: unknown, listener: unknown) => void)(metadata, listener);
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as InterceptingCall;
};
