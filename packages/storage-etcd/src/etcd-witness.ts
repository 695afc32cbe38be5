import { randomBytes } from "node:crypto";
import type { EtcdConnection } from "./etcd-connection.js";
import type { EtcdKeyspace } from "./etcd-keyspace.js";

/** A witness slot: a key that only one commit at a time writes, and its mod revision as last seen ("0": absent). */
export interface WitnessSlot {
  readonly key: Buffer;
  modRevision: string;
}

/**
 * The witness slots of one backend object, `P` + `meta/witness/<instance>/<n>`, kept under an
 * etcd lease that this object keeps alive and revokes on close, so that a process that exits
 * without closing leaves them to expire with the lease instead of forever.
 *
 * Every write this object makes is one etcd `Txn` that compares its slot's mod revision with
 * the one last seen and puts the slot to a fresh operation id in the same `Txn` (see
 * `EtcdStore.commit`): so at most one send of a write can apply, and reading the slot tells
 * whether one did.
 */
export class EtcdWitness {
  readonly #connection: EtcdConnection;
  readonly #prefix: Buffer;
  readonly #ttlSeconds: number;
  readonly #free: WitnessSlot[] = [];
  #slots = 0;
  #lease: Promise<string> | undefined;
  #keepAlive: NodeJS.Timeout | undefined;

  constructor(connection: EtcdConnection, keys: EtcdKeyspace, requestTimeoutMs: number) {
    this.#connection = connection;
    this.#prefix = keys.witnessPrefix(randomBytes(6).toString("hex"));
    // Well past the longest operation, so that a slot outlives every write that may need to read it back.
    this.#ttlSeconds = Math.max(60, Math.ceil((4 * requestTimeoutMs) / 1000));
  }

  /** A slot no write in flight holds (give it back with {@link release}). */
  take(): WitnessSlot {
    return this.#free.pop() ?? { key: Buffer.concat([this.#prefix, Buffer.from(String(this.#slots++))]), modRevision: "0" };
  }

  /** Gives a slot back once its write is settled. */
  release(slot: WitnessSlot): void {
    this.#free.push(slot);
  }

  /** The lease the slots are put with (granted at the first write, kept alive while the backend is open). */
  lease(): Promise<string> {
    this.#lease ??= this.#grant();
    return this.#lease;
  }

  /** Forgets a lease etcd no longer knows (expired while the process was cut off): the next write grants another. */
  leaseLost(id: string): void {
    void this.#lease?.then(
      (current) => {
        if (current === id) this.#dropLease();
      },
      () => undefined,
    );
  }

  /** Stops the keep-alive and revokes the lease, deleting the slots (best effort; the lease expires anyway). */
  async close(): Promise<void> {
    const lease = this.#lease;
    this.#dropLease();
    const id = await lease?.catch(() => undefined);
    if (id === undefined) return;
    await this.#connection.client.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + this.#connection.dialTimeoutMs });
  }

  async #grant(): Promise<string> {
    try {
      const response = await this.#connection.run("lease grant", (options) =>
        this.#connection.client.leaseClient.leaseGrant({ TTL: this.#ttlSeconds }, options),
      );
      const id = response.ID;
      this.#keepAlive = setInterval(() => void this.#renew(id), (this.#ttlSeconds * 1000) / 4);
      this.#keepAlive.unref();
      return id;
    } catch (error) {
      this.#lease = undefined;
      throw error;
    }
  }

  /** One keep-alive of the lease; a lease etcd reports expired is dropped (the next write grants a new one). */
  async #renew(id: string): Promise<void> {
    if (this.#connection.closed) return;
    try {
      const stream = await this.#connection.client.leaseClient.leaseKeepAlive();
      const ttl = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("lease keep-alive timed out")), this.#connection.dialTimeoutMs);
        stream.on("data", (response: { TTL: string }) => {
          clearTimeout(timer);
          resolve(response.TTL);
        });
        stream.on("error", (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        });
        stream.write({ ID: id });
      }).finally(() => {
        stream.on("error", () => undefined);
        stream.end();
      });
      if (Number(ttl) <= 0) this.leaseLost(id);
    } catch {
      // A missed renewal is retried at the next tick; the TTL leaves several.
    }
  }

  #dropLease(): void {
    if (this.#keepAlive) clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
    this.#lease = undefined;
  }
}
