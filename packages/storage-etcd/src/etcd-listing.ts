import type { IKeyValue } from "etcd3";
import type { KeySeek } from "@egide/storage-core";
import { justAfter } from "./etcd-keyspace.js";
import type { EtcdStore } from "./etcd-store.js";

/** The keys one probe of a listing found. */
export interface ListingPage {
  /** Keys (with their revisions; values are not read) in order. */
  kvs: IKeyValue[];
  /** More keys follow in the probe's range. */
  more: boolean;
  /** The revision read at. */
  revision: string;
}

/**
 * When the probes still to come are estimated to walk more keys on the server than reading the
 * rest of the listing in one go would transfer, the rest is read in one go. etcd 3.4 walks every
 * key of a range request's interval, whatever its limit (about 0.17 µs a key here), while
 * returning a key costs about 25 times that: a skip-scan probe costs the keys left in the
 * listed subtree, a full read the same keys once, 25 times over. So past about 24 more probes,
 * one read is cheaper.
 */
export const LISTING_FULL_READ_AFTER_PROBES = 24;

/**
 * The probes of one listing (a skip-scan of storage-core's `listChildren`), over keys-only
 * range requests with limits, each bounded by the listing's end. Every probe costs one round
 * trip; the server's cost of each is the number of keys from its start to the end of the listed
 * subtree (see {@link LISTING_FULL_READ_AFTER_PROBES}), which etcd reports as `count`. From the
 * counts the prober estimates how many probes remain (children found per key passed so far);
 * when that exceeds the threshold it reads the rest of the range once (keys only) and answers
 * the remaining probes from it, without further round trips.
 */
export class ListingProber {
  readonly #store: EtcdStore;
  #firstCount: number | undefined;
  #probes = 0;
  #readRest = false;
  /** The rest of the range, once read in full: keys from `#restFrom` to the listing's end. */
  #rest: IKeyValue[] | undefined;
  #restRevision = "";
  /** Round trips made. */
  requests = 0;

  constructor(store: EtcdStore) {
    this.#store = store;
  }

  /** One probe: up to `probe.limit + extra` keys at `revision` (undefined: now). */
  async seek(probe: KeySeek, revision: string | undefined, extra = 0): Promise<ListingPage> {
    const keys = this.#store.keys;
    const start = probe.inclusive ? keys.dataKey(probe.from) : justAfter(keys.dataKey(probe.from));
    const end = keys.dataBound(probe.before);
    const limit = probe.limit + extra;
    if (this.#rest === undefined && this.#readRest) {
      const response = await this.#store.range("list", { key: start, range_end: end, keys_only: true, ...at(revision) });
      this.requests++;
      this.#rest = response.kvs;
      this.#restRevision = response.header.revision;
    }
    if (this.#rest !== undefined) {
      // Served from the keys read in full (each later probe starts past the earlier ones).
      const first = lowerBound(this.#rest, start);
      let stop = first;
      while (stop < this.#rest.length && stop - first < limit && Buffer.compare((this.#rest[stop] as IKeyValue).key, end) < 0) stop++;
      const more = stop < this.#rest.length && Buffer.compare((this.#rest[stop] as IKeyValue).key, end) < 0;
      return { kvs: this.#rest.slice(first, stop), more, revision: revision ?? this.#restRevision };
    }
    const response = await this.#store.range("list", { key: start, range_end: end, limit, keys_only: true, ...at(revision) });
    this.requests++;
    this.#probes++;
    const count = Number(response.count);
    this.#firstCount ??= count;
    const remaining = count - response.kvs.length;
    const passed = Math.max(1, this.#firstCount - remaining);
    if (response.more && (this.#probes * remaining) / passed > LISTING_FULL_READ_AFTER_PROBES) this.#readRest = true;
    return { kvs: response.kvs, more: response.more, revision: response.header.revision };
  }
}

/** The index of the first key-value whose key is at or after `key` (binary search). */
function lowerBound(kvs: readonly IKeyValue[], key: Buffer): number {
  let low = 0;
  let high = kvs.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (Buffer.compare((kvs[middle] as IKeyValue).key, key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

function at(revision: string | undefined): { revision?: string } {
  return revision === undefined ? {} : { revision };
}
