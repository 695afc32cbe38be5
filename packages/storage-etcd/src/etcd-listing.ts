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
 * The most keys one read of "the rest" takes: a listing holds at most this many keys at a
 * time, and reads further windows as its probes move past the one it holds.
 */
export const LISTING_REST_PAGE_KEYS = 10_000;

/** A window of the rest of a listing's range, read keys only. */
interface RestWindow {
  /** The first key the read asked for. */
  from: Buffer;
  kvs: IKeyValue[];
  /** More keys follow the window in the listing's range. */
  more: boolean;
  revision: string;
}

/**
 * The probes of one listing (a skip-scan of storage-core's `listChildren`), over keys-only
 * range requests with limits, each bounded by the listing's end. Every probe costs one round
 * trip; the server's cost of each is the number of keys from its start to the end of the listed
 * subtree (see {@link LISTING_FULL_READ_AFTER_PROBES}), which etcd reports as `count`. From the
 * counts the prober estimates how many probes remain (children found per key passed so far);
 * when that exceeds the threshold it reads the rest of the range in windows (keys only, as
 * many keys as the children still wanted are estimated to span, at most
 * {@link LISTING_REST_PAGE_KEYS}) and answers the remaining probes from them.
 */
export class ListingProber {
  readonly #store: EtcdStore;
  /** The children the listing wants at most (0: all). */
  readonly #wanted: number;
  #firstCount: number | undefined;
  /** Keys the first probe returned. */
  #firstKeys: number | undefined;
  #probes = 0;
  #readRest = false;
  /** Keys passed per probe when the switch was made. */
  #keysPerProbe = 1;
  #window: RestWindow | undefined;
  /** Round trips made. */
  requests = 0;

  /** @param wanted the listing's limit (0: every child) */
  constructor(store: EtcdStore, wanted = 0) {
    this.#store = store;
    this.#wanted = wanted;
  }

  /** One probe: up to `probe.limit + extra` keys at `revision` (undefined: now). */
  async seek(probe: KeySeek, revision: string | undefined, extra = 0): Promise<ListingPage> {
    const keys = this.#store.keys;
    const start = probe.inclusive ? keys.dataKey(probe.from) : justAfter(keys.dataKey(probe.from));
    const end = keys.dataBound(probe.before);
    const limit = probe.limit + extra;
    if (this.#readRest) {
      let window = this.#window;
      if (window === undefined || Buffer.compare(start, window.from) < 0) window = await this.#read(start, end, revision, limit);
      let served = serve(window, start, end, limit);
      if (served.exhausted) {
        // The probe runs past the window: the next window starts where it does.
        window = await this.#read(start, end, revision, limit);
        served = serve(window, start, end, limit);
      }
      return { kvs: served.kvs, more: served.more, revision: revision ?? window.revision };
    }
    const response = await this.#store.range("list", { key: start, range_end: end, limit, keys_only: true, ...at(revision) });
    this.requests++;
    this.#probes++;
    const count = Number(response.count);
    this.#firstCount ??= count;
    const remaining = count - response.kvs.length;
    const passed = Math.max(1, this.#firstCount - remaining);
    this.#firstKeys ??= response.kvs.length;
    if (response.more && (this.#probes * remaining) / passed > LISTING_FULL_READ_AFTER_PROBES) {
      this.#readRest = true;
      // Keys per child: the first probe reads a whole batch (many children), the later ones jump a child each.
      this.#keysPerProbe = Math.max(1, this.#probes > 1 ? (passed - this.#firstKeys) / (this.#probes - 1) : passed);
    }
    return { kvs: response.kvs, more: response.more, revision: response.header.revision };
  }

  async #read(start: Buffer, end: Buffer, revision: string | undefined, limit: number): Promise<RestWindow> {
    // Every probe finds at least one child: the children still wanted bound the keys worth reading.
    const estimate = this.#wanted > 0 ? Math.ceil(this.#keysPerProbe * Math.max(1, this.#wanted - this.#probes)) : LISTING_REST_PAGE_KEYS;
    const size = Math.min(LISTING_REST_PAGE_KEYS, Math.max(limit, 256, estimate));
    const response = await this.#store.range("list", { key: start, range_end: end, limit: size, keys_only: true, ...at(revision) });
    this.requests++;
    this.#probes++;
    this.#window = { from: start, kvs: response.kvs, more: response.more, revision: response.header.revision };
    return this.#window;
  }
}

/** Up to `limit` keys of `window` from `start`, before `end`; `exhausted` when the window ended first and more follow it. */
function serve(window: RestWindow, start: Buffer, end: Buffer, limit: number): { kvs: IKeyValue[]; more: boolean; exhausted: boolean } {
  const { kvs } = window;
  const first = lowerBound(kvs, start);
  let stop = first;
  while (stop < kvs.length && stop - first < limit && Buffer.compare((kvs[stop] as IKeyValue).key, end) < 0) stop++;
  const atEnd = stop === kvs.length;
  const more = atEnd ? window.more : Buffer.compare((kvs[stop] as IKeyValue).key, end) < 0;
  return { kvs: kvs.slice(first, stop), more, exhausted: atEnd && window.more && stop - first < limit };
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
