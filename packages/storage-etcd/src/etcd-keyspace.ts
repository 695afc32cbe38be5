import { prefixSuccessor } from "@egide/storage-core";

/** Width of an audit id in its key: ids sort as their keys do. */
const AUDIT_ID_DIGITS = 16;

/**
 * Where this storage's keys live in etcd, all under the configured prefix `P`:
 *
 * - `P` + `kv/` + key: the data (a storage key as its UTF-8 bytes, so etcd's byte order is the
 *   contract's order);
 * - `P` + `audit/` + 16-digit id: the audit records (see `EtcdAuditStore`);
 * - `P` + `meta/…`: the adapter's own bookkeeping.
 *
 * Keeping data and audit records in sibling sub-prefixes lets every data range, listing, scan
 * and watch cover the data alone.
 */
export class EtcdKeyspace {
  /** `P` + `kv/`. */
  readonly dataPrefix: Buffer;
  /** The first key after every data key. */
  readonly dataEnd: Buffer;
  /** `P` + `audit/`. */
  readonly auditPrefix: Buffer;
  /** The first key after every audit key. */
  readonly auditEnd: Buffer;
  /**
   * `P` + `meta/deleted`: rewritten by every commit that deletes data, so that a transaction
   * whose reads are too many to compare one by one can still tell that nothing was deleted
   * since it read (see `EtcdTransaction`).
   */
  readonly deletionMarker: Buffer;
  readonly #dataPrefixText: string;

  constructor(readonly prefix: string) {
    this.#dataPrefixText = `${prefix}kv/`;
    this.dataPrefix = Buffer.from(this.#dataPrefixText, "utf8");
    this.dataEnd = prefixEnd(this.dataPrefix);
    this.auditPrefix = Buffer.from(`${prefix}audit/`, "utf8");
    this.auditEnd = prefixEnd(this.auditPrefix);
    this.deletionMarker = Buffer.from(`${prefix}meta/deleted`, "utf8");
  }

  /** The etcd key of a storage key. */
  dataKey(key: string): Buffer {
    return Buffer.from(this.#dataPrefixText + key, "utf8");
  }

  /** The storage key of an etcd data key. */
  storageKey(etcdKey: Buffer): string {
    return etcdKey.toString("utf8", this.dataPrefix.length);
  }

  /** The first etcd key after every data key that starts with `prefix` (a storage prefix). */
  dataRangeEnd(prefix: string): Buffer {
    const next = prefixSuccessor(prefix);
    return next === null ? this.dataEnd : this.dataKey(next);
  }

  /** The end of a storage range whose exclusive upper bound is the storage key `before` (null: no bound). */
  dataBound(before: string | null): Buffer {
    return before === null ? this.dataEnd : this.dataKey(before);
  }

  /**
   * `P` + `meta/witness/<instance>/`: the commit witnesses of one backend object (see
   * `EtcdStore.commit`).
   */
  witnessPrefix(instance: string): Buffer {
    return Buffer.from(`${this.prefix}meta/witness/${instance}/`, "utf8");
  }

  /** The etcd key of the audit record `id`. */
  auditKey(id: number): Buffer {
    return Buffer.concat([this.auditPrefix, Buffer.from(String(id).padStart(AUDIT_ID_DIGITS, "0"), "ascii")]);
  }
}

/** The smallest key greater than `key` (`key` followed by a zero byte): an exclusive bound just past it. */
export function justAfter(key: Buffer): Buffer {
  return Buffer.concat([key, ZERO]);
}

const ZERO = Buffer.from([0]);

/** The first byte string after every string that starts with `prefix` (which never ends with 0xff here). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  const last = end.length - 1;
  end[last] = (end[last] as number) + 1;
  return end;
}
