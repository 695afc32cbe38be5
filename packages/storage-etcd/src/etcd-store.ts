import { randomBytes } from "node:crypto";
import {
  CompareResult,
  CompareTarget,
  EtcdLeaseInvalidError,
  type ICompare,
  type IKeyValue,
  type IRangeRequest,
  type IRangeResponse,
  type IRequestOp,
  type ITxnRequest,
  type ITxnResponse,
} from "etcd3";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type { EtcdChangeFeed } from "./etcd-change-feed.js";
import type { EtcdConnection } from "./etcd-connection.js";
import type { EtcdKeyspace } from "./etcd-keyspace.js";
import type { ResolvedEtcdOptions } from "./etcd-options.js";
import { nestOps, rangeResponses } from "./etcd-txn.js";
import { ETCD_TYPE } from "./etcd-type.js";
import { EtcdWitness, type WitnessSlot } from "./etcd-witness.js";

const EMPTY = Buffer.alloc(0);

/** What a write needs besides its operations. */
export interface CommitRequest {
  /** For messages ("commit", "audit append"). */
  what: string;
  /** The conditions of the write (besides its witness slot's, which every write gets). */
  compares: ICompare[];
  ops: IRequestOp[];
  /** The storage keys the write changes, for the change feed. */
  changed: readonly string[];
}

/**
 * The requests every part of the adapter makes (backend, transactions, audit store), over one
 * {@link EtcdConnection} and one {@link EtcdKeyspace}.
 */
export class EtcdStore {
  /** The witness slots every write is guarded by (see {@link apply}). */
  readonly witness: EtcdWitness;

  constructor(
    readonly connection: EtcdConnection,
    readonly keys: EtcdKeyspace,
    readonly options: ResolvedEtcdOptions,
    readonly feed: EtcdChangeFeed | undefined,
  ) {
    this.witness = new EtcdWitness(connection, keys, options.requestTimeoutMs);
  }

  /** Throws `CLOSED` once the backend is closed. */
  checkOpen(): void {
    if (this.connection.closed) throw this.connection.closedError();
  }

  /** One range request, retried as reads are. */
  range(what: string, request: IRangeRequest): Promise<IRangeResponse> {
    return this.connection.run(what, (options) => this.connection.kv.range(request, options));
  }

  /**
   * The key-values of `keys` (each once; `null` where absent) in one consistent read: one range
   * for one key, else one transaction of ranges. The revision read at is returned.
   */
  async readKeys(
    keys: readonly string[],
    revision: string | undefined,
    keysOnly = false,
  ): Promise<{ found: Map<string, IKeyValue | null>; revision: string }> {
    const found = new Map<string, IKeyValue | null>();
    const at = revision !== undefined ? { revision } : {};
    const only = keysOnly ? { keys_only: true } : {};
    if (keys.length === 1) {
      const key = keys[0] as string;
      const response = await this.range(keysOnly ? "exists" : "get", { key: this.keys.dataKey(key), ...at, ...only });
      found.set(key, response.kvs[0] ?? null);
      return { found, revision: response.header.revision };
    }
    const ops: IRequestOp[] = keys.map((key) => ({ request_range: { key: this.keys.dataKey(key), ...at, ...only } }));
    const request: ITxnRequest = { success: nestOps(ops, this.options.maxTxnOps) };
    const response = await this.connection.run("getMany", (options) => this.connection.kv.txn(request, options));
    const ranges = rangeResponses(response.responses);
    for (const [index, key] of keys.entries()) found.set(key, ranges[index]?.kvs[0] ?? null);
    return { found, revision: response.header.revision };
  }

  /**
   * Commits a transaction: `ops` apply only if every compare holds; a compare that fails is a
   * `CONFLICT` (retryable: the caller's transaction runs again). See {@link apply}.
   */
  async commit(request: CommitRequest): Promise<number> {
    const revision = await this.apply(request);
    if (revision === null) {
      throw new StorageError(StorageErrorCode.CONFLICT, `${request.what}: a concurrent write changed what the transaction read`, {
        backend: ETCD_TYPE,
        retryable: true,
      });
    }
    return revision;
  }

  /**
   * Applies a write at most once: resolves with its revision once etcd applied it (after the
   * change feed heard of it), or with null when its compares failed (nothing applied).
   *
   * The write is one `Txn` that also compares a witness slot of this backend object (a key only
   * this write uses while it is in flight) with its last known mod revision, and puts the slot
   * to a fresh operation id; when a compare fails, the `Txn` instead reads the slot and rewrites
   * it. So every send of the write is guarded by the slot: once one send applied, or once any
   * answer came back, no other send of it can apply any more. After a failure that may have
   * applied the write (a lost answer: the connection dropped, a deadline passed, the leader
   * changed), sending it again is therefore safe, and its answer tells what happened: applied
   * now, applied earlier (the slot holds the id), or not applied (the slot is as it was: the
   * write's own compares failed). When no answer comes within `request_timeout`, the outcome is
   * unknown, and that is an `UNAVAILABLE` that is not retryable.
   */
  async apply(request: CommitRequest): Promise<number | null> {
    const slot = this.witness.take();
    try {
      const revision = await this.#apply(request, slot);
      if (revision !== null) this.feed?.committed(revision, request.changed);
      return revision;
    } finally {
      this.witness.release(slot);
    }
  }

  async #apply(request: CommitRequest, slot: WitnessSlot): Promise<number | null> {
    const id = randomBytes(12);
    const end = Date.now() + this.options.requestTimeoutMs;
    let ambiguous = false;
    let lastError: unknown;
    while (Date.now() < end) {
      let lease: string;
      try {
        lease = await this.witness.lease();
      } catch (error) {
        throw ambiguous ? this.#unknown(request.what, error) : error;
      }
      const expected = slot.modRevision;
      const compares: ICompare[] = [
        { key: slot.key, target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: expected },
        ...request.compares,
      ];
      const txn: ITxnRequest = {
        compare: compares,
        // A slot that exists keeps its lease (cheaper for etcd than attaching it again on every write).
        success: nestOps(
          [...request.ops, { request_put: { key: slot.key, value: id, ...(expected === "0" ? { lease } : { ignore_lease: true }) } }],
          this.options.maxTxnOps,
          compares.length,
        ),
        failure: [{ request_range: { key: slot.key } }, { request_put: { key: slot.key, value: EMPTY, lease } }],
      };
      this.#checkSize(txn, request.what);
      let response: ITxnResponse;
      try {
        response = await this.connection.run(request.what, (options) => this.connection.kv.txn(txn, options), {
          budgetMs: Math.max(1, end - Date.now()),
          onFailure: (failure) => {
            if (!failure.notApplied && !isLeaseGone(failure.error)) ambiguous = true;
          },
        });
      } catch (error) {
        if (isLeaseGone(error)) {
          // etcd refused the request as a whole (its lease expired while this process was cut off): not applied.
          this.witness.leaseLost(lease);
          lastError = error;
          continue;
        }
        throw ambiguous ? this.#unknown(request.what, error) : error;
      }
      // Either branch ends by putting the slot: the answer's revision is its mod revision now.
      slot.modRevision = response.header.revision;
      if (response.succeeded) return Number(response.header.revision);
      const before = rangeResponses(response.responses)[0]?.kvs[0];
      if (before?.value.equals(id)) return Number(before.mod_revision);
      if ((before?.mod_revision ?? "0") === expected) return null;
      // The slot moved without this write (its lease expired): whatever landed before may be gone with it.
      if (ambiguous) throw this.#unknown(request.what, undefined);
      lastError = undefined;
    }
    if (ambiguous) throw this.#unknown(request.what, lastError);
    throw new StorageError(StorageErrorCode.UNAVAILABLE, `${request.what}: etcd did not take the write within request_timeout`, {
      backend: ETCD_TYPE,
      retryable: true,
      ...(lastError === undefined ? {} : { cause: lastError }),
    });
  }

  /** Revokes the witness slots' lease (on close; best effort). */
  async dropWitnesses(): Promise<void> {
    await this.witness.close();
  }

  #unknown(what: string, cause: unknown): StorageError {
    const detail = cause instanceof Error ? `: ${cause.message.replace(/^etcd: /, "")}` : "";
    return new StorageError(
      StorageErrorCode.UNAVAILABLE,
      `${what}: the outcome is unknown: etcd may have applied the write, but no answer came back within request_timeout${detail}; read the data back before writing it again`,
      { backend: ETCD_TYPE, retryable: false, ...(cause === undefined ? {} : { cause }) },
    );
  }

  /** Refuses, before sending it, a request etcd would refuse as too large. */
  #checkSize(txn: ITxnRequest, what: string): void {
    const size = txnBytes(txn);
    if (size > this.options.maxRequestBytes - 512) {
      throw new StorageError(
        StorageErrorCode.VALUE_TOO_LARGE,
        `${what}: the transaction needs about ${size} bytes, more than etcd accepts in one request (max_request_bytes = ${this.options.maxRequestBytes}, the server's --max-request-bytes); write less in one transaction`,
        { backend: ETCD_TYPE, retryable: false },
      );
    }
  }
}

/** An upper estimate of a transaction request's encoded size. */
function txnBytes(txn: ITxnRequest): number {
  let size = 8;
  for (const compare of txn.compare ?? []) size += (compare.key?.length ?? 0) + (compare.range_end?.length ?? 0) + 24;
  for (const op of [...(txn.success ?? []), ...(txn.failure ?? [])]) {
    if (op.request_put) size += (op.request_put.key?.length ?? 0) + (op.request_put.value?.length ?? 0) + 16;
    else if (op.request_delete_range)
      size += (op.request_delete_range.key?.length ?? 0) + (op.request_delete_range.range_end?.length ?? 0) + 16;
    else if (op.request_range) size += (op.request_range.key?.length ?? 0) + (op.request_range.range_end?.length ?? 0) + 24;
    else if (op.request_txn) size += txnBytes(op.request_txn) + 8;
  }
  return size;
}

/** Whether `error` (or its cause) is etcd's answer that a lease does not exist (any more). */
function isLeaseGone(error: unknown): boolean {
  const cause = StorageError.isInstance(error) ? error.cause : error;
  return cause instanceof EtcdLeaseInvalidError || (cause instanceof Error && cause.message.includes("requested lease not found"));
}
