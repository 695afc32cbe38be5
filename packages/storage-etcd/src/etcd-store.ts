import { randomBytes } from "node:crypto";
import type { ICompare, IKeyValue, IRangeRequest, IRangeResponse, IRequestOp, ITxnRequest } from "etcd3";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type { EtcdChangeFeed } from "./etcd-change-feed.js";
import type { EtcdConnection } from "./etcd-connection.js";
import type { EtcdKeyspace } from "./etcd-keyspace.js";
import type { ResolvedEtcdOptions } from "./etcd-options.js";
import { guardedTxn, nestOps, rangeResponses } from "./etcd-txn.js";
import { ETCD_TYPE } from "./etcd-type.js";

/** A write whose landing can be checked after a connection failure: this key holds this value only if the write applied. */
export interface CommitWitness {
  key: Buffer;
  value: Buffer;
}

/** What a commit needs besides its operations. */
export interface CommitRequest {
  /** For messages ("commit", "audit append"). */
  what: string;
  compares: ICompare[];
  ops: IRequestOp[];
  /** The storage keys the commit changes, for the change feed. */
  changed: readonly string[];
  /**
   * See {@link CommitWitness}. Without one, a commit that has compares gets a witness key of its
   * own (see {@link EtcdStore.commit}).
   */
  witness?: CommitWitness;
}

/**
 * The requests every part of the adapter makes (backend, transactions, audit store), over one
 * {@link EtcdConnection} and one {@link EtcdKeyspace}.
 */
export class EtcdStore {
  /** This backend object's witness keys' prefix (`P` + `meta/witness/<random>/`). */
  readonly witnessPrefix: Buffer;
  /** Witness slots no commit in flight holds. */
  readonly #freeSlots: number[] = [];
  #slots = 0;

  constructor(
    readonly connection: EtcdConnection,
    readonly keys: EtcdKeyspace,
    readonly options: ResolvedEtcdOptions,
    readonly feed: EtcdChangeFeed | undefined,
  ) {
    this.witnessPrefix = keys.witnessPrefix(randomBytes(6).toString("hex"));
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
   * Commits a transaction: `ops` apply only if every compare holds. A compare that fails is a
   * `CONFLICT` (retryable: the caller's transaction runs again). The request is sent again after
   * a transient failure, which is safe: a second application either finds its compares broken by
   * the first or rewrites the same values. But when an attempt failed in a way that may have
   * applied it and the compares then fail, whether the first one landed is unknown (unless a
   * witness tells), and that is an `UNAVAILABLE` that must not be retried blindly.
   *
   * Resolves with the commit's revision, after the change feed heard of it.
   */
  async commit(request: CommitRequest): Promise<number> {
    // A commit guarded by compares and without a witness of its own writes one: a key only this
    // commit uses while it is in flight (a slot of this backend object, reused afterwards), set
    // to a fresh random value. So after a failure that may have applied the commit, reading the
    // slot tells exactly whether it did.
    let slot: number | undefined;
    let { witness, ops } = request;
    if (witness === undefined && request.compares.length > 0) {
      slot = this.#freeSlots.pop() ?? this.#slots++;
      witness = { key: Buffer.concat([this.witnessPrefix, Buffer.from(String(slot))]), value: randomBytes(12) };
      ops = [...ops, { request_put: { key: witness.key, value: witness.value } }];
    }
    try {
      return await this.#commit(request, ops, witness);
    } finally {
      if (slot !== undefined) this.#freeSlots.push(slot);
    }
  }

  async #commit(request: CommitRequest, ops: IRequestOp[], witness: CommitWitness | undefined): Promise<number> {
    const txn = guardedTxn(request.compares, ops, this.options.maxTxnOps);
    this.#checkSize(txn, request.what);
    let ambiguous = false;
    const response = await this.connection.run(request.what, (options) => this.connection.kv.txn(txn, options), {
      onFailure: (failure) => {
        if (!failure.notApplied) ambiguous = true;
      },
    });
    let revision = Number(response.header.revision);
    if (!response.succeeded) {
      const landed = ambiguous && witness ? await this.#witnessed(witness) : undefined;
      if (landed === undefined) {
        if (ambiguous && !witness) {
          throw new StorageError(
            StorageErrorCode.UNAVAILABLE,
            `${request.what}: the connection failed while etcd may have applied the transaction, and what it read has changed since; whether it committed is unknown`,
            { backend: ETCD_TYPE, retryable: false },
          );
        }
        throw new StorageError(StorageErrorCode.CONFLICT, `${request.what}: a concurrent write changed what the transaction read`, {
          backend: ETCD_TYPE,
          retryable: true,
        });
      }
      revision = landed;
    }
    this.feed?.committed(revision, request.changed);
    return revision;
  }

  /** Deletes this backend object's witness keys (on close; best effort). */
  async dropWitnesses(): Promise<void> {
    if (this.#slots === 0) return;
    const end = Buffer.from(this.witnessPrefix);
    end[end.length - 1] = (end[end.length - 1] as number) + 1;
    await this.connection.kv.deleteRange(
      { key: this.witnessPrefix, range_end: end },
      { deadline: Date.now() + this.options.dialTimeoutMs },
    );
  }

  /** The revision at which the witness's write landed, or undefined when it did not. */
  async #witnessed(witness: CommitWitness): Promise<number | undefined> {
    const response = await this.range("commit check", { key: witness.key });
    const kv = response.kvs[0];
    return kv?.value.equals(witness.value) ? Number(kv.mod_revision) : undefined;
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
