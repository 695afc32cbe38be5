// A small, independent in-memory backend with switchable bugs: the mutants the suite must kill.
import { DEFAULT_MAX_VALUE_BYTES, StorageError, compareKeys, validateKey, validatePrefix, validateValue } from "@egide/storage-core";
import type {
  ChangeFeedListener,
  ChangeFeedSubscription,
  HealthStatus,
  ScanEntry,
  StorageBackend,
  StorageChange,
  Transaction,
  TransactionOptions,
} from "@egide/storage-core";

/**
 * Deliberate contract violations, one per mutant. The conformance suite must fail on every one
 * of them; `run-mutants.mjs` checks that it does.
 */
export const BUGS = [
  "pageInclusive",
  "jsSort",
  "scanJsSort",
  "getNoCopy",
  "putNoCopy",
  "noRollback",
  "txNoClosed",
  "readOnlyIgnored",
  "recursiveDelete",
  "existsFolder",
  "limitZeroEmpty",
  "noKeyValidation",
  "valueOffByOne",
  "closeIgnored",
  "emptyAsNull",
  "noSerialize",
  "tornCommit",
  "dirtyReads",
  "noDedupe",
  "ghostFolders",
  "syncThrow",
  "emptyEntry",
  "scanChildrenOnly",
  "likeWildcard",
  "wrapError",
  "txNoReadOwnList",
  "afterFolderNoSkip",
  "scanIncludesPrefixSibling",
  "maxKeyChars",
  // The optional capabilities: the baseline and these mutants offer getMany and the change feed.
  "getManySorted",
  "getManyDedupe",
  "getManyNoValidation",
  "getManyNoCopy",
  "getManyTxCommitted",
  "getManyTorn",
  "getManyMissingInReadOnly",
  "feedAfterResolve",
  "feedEcho",
  "feedRollback",
  "feedReadOnlyEmpty",
  "feedNullKeys",
  "feedDuplicateKeys",
  "feedListenerThrows",
  "feedCloseIgnored",
  "feedPositionReset",
  "feedCommittedAtSeconds",
  "feedLiveAfterClose",
  "undeclaredFeed",
] as const;

/** One deliberate bug, or "none" for the correct baseline. */
export type Bug = (typeof BUGS)[number] | "none";

/**
 * Whether `bug`'s backend offers `getMany` and `subscribeChanges`: the baseline and the
 * capability mutants do; the others do not, so the suite's capability cases (and their waits
 * for late deliveries) run only where they can catch something.
 */
export function offersCapabilities(bug: Bug): boolean {
  return bug === "none" || bug.startsWith("getMany") || bug.startsWith("feed") || bug === "undeclaredFeed";
}

const sleep0 = () => new Promise((r) => setImmediate(r));

export class BuggyBackend implements StorageBackend {
  readonly type = "buggy";
  data = new Map<string, Buffer>();
  folders = new Set<string>();
  closed = false;
  tail: Promise<unknown> = Promise.resolve();
  declare getMany?: (keys: readonly string[]) => Promise<(Buffer | null)[]>;
  declare subscribeChanges?: (listener: ChangeFeedListener) => ChangeFeedSubscription;
  subscribers = new Set<ChangeFeedListener>();
  position = 0;
  feedLive = false;
  constructor(readonly bug: Bug) {
    if (!offersCapabilities(bug)) return;
    this.getMany = (keys) => this.readMany(keys);
    this.subscribeChanges = (listener) => this.subscribe(listener);
    // Never going live is not a mutant: only the suite's 10 s wait for liveness would catch it, in each feed case.
    this.feedLive = true;
  }

  async readMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    for (const key of keys) {
      if (this.bug === "getManyNoValidation") this.checkPrefix("");
      else this.check(key);
    }
    let asked = [...keys];
    if (this.bug === "getManySorted") asked = asked.sort(compareKeys);
    if (this.bug === "getManyDedupe") asked = [...new Set(asked)];
    if (this.bug === "getManyNoCopy") return asked.map((key) => this.data.get(key) ?? null);
    if (this.bug !== "getManyTorn") return asked.map((key) => this.read(this.data, key));
    const values: (Buffer | null)[] = [];
    for (const key of asked) {
      values.push(this.read(this.data, key));
      await sleep0();
    }
    return values;
  }
  subscribe(listener: ChangeFeedListener): ChangeFeedSubscription {
    const subscriber: ChangeFeedListener = { change: (c) => listener.change(c), live: (l) => listener.live(l) };
    this.subscribers.add(subscriber);
    if (this.feedLive) this.tell(() => subscriber.live(true));
    const self = this;
    let open = true;
    return {
      get live() {
        return open && self.feedLive;
      },
      close() {
        if (self.bug === "feedCloseIgnored") return;
        open = false;
        self.subscribers.delete(subscriber);
      },
    };
  }
  tell(call: () => void) {
    if (this.bug === "feedListenerThrows") return call();
    try {
      call();
    } catch {
      // A throwing listener loses its own delivery only.
    }
  }
  publish(keys: string[] | null) {
    if (!this.subscribeChanges) return;
    const deliver = () => {
      this.position = this.bug === "feedPositionReset" ? 1 : this.position + 1;
      const committedAt = this.bug === "feedCommittedAtSeconds" ? Math.floor(Date.now() / 1000) : Date.now();
      const change: StorageChange = { position: this.position, keys, committedAt };
      for (const subscriber of [...this.subscribers]) this.tell(() => subscriber.change(change));
    };
    if (this.bug === "feedAfterResolve") setTimeout(deliver, 1);
    else deliver();
    if (this.bug === "feedEcho") setTimeout(deliver, 20);
  }

  check(key: unknown) {
    if (this.closed && this.bug !== "closeIgnored") throw new StorageError("CLOSED", "closed");
    if (this.bug === "noKeyValidation") return;
    if (this.bug === "maxKeyChars" && typeof key === "string" && key.length <= 1024 && Buffer.byteLength(key) > 1024) return;
    validateKey(key);
  }
  checkPrefix(p: unknown) {
    if (this.closed && this.bug !== "closeIgnored") throw new StorageError("CLOSED", "closed");
    validatePrefix(p);
  }
  sort(a: string[]) {
    return this.bug === "jsSort" ? a.sort() : a.sort(compareKeys);
  }
  children(keys: Iterable<string>, prefix: string): string[] {
    const out: string[] = [];
    const all = [...keys];
    if (this.bug === "ghostFolders") all.push(...this.folders);
    for (const key of all) {
      if (!key.startsWith(prefix)) continue;
      if (key === prefix && this.bug !== "emptyEntry") continue;
      const rest = key.slice(prefix.length);
      const i = rest.indexOf("/");
      out.push(i === -1 ? rest : rest.slice(0, i + 1));
    }
    const unique = this.bug === "noDedupe" ? out : [...new Set(out)];
    return this.sort(unique);
  }
  page(entries: string[], after: string, limit: number): string[] {
    let rest =
      after === ""
        ? entries
        : entries.filter((e) => (this.bug === "pageInclusive" ? compareKeys(e, after) >= 0 : compareKeys(e, after) > 0));
    if (this.bug === "afterFolderNoSkip" && after.endsWith("/")) rest = entries.filter((e) => compareKeys(e, after.slice(0, -1)) > 0);
    if (this.bug === "limitZeroEmpty" && limit === 0) return [];
    return limit > 0 ? rest.slice(0, limit) : rest;
  }
  view(overlay?: Map<string, Buffer | null>): Map<string, Buffer> {
    const m = new Map(this.data);
    if (overlay) for (const [k, v] of overlay) v === null ? m.delete(k) : m.set(k, v);
    return m;
  }
  read(m: Map<string, Buffer>, key: string): Buffer | null {
    const v = m.get(key);
    if (v === undefined) return null;
    if (this.bug === "emptyAsNull" && v.length === 0) return null;
    return this.bug === "getNoCopy" ? v : Buffer.from(v);
  }
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.bug === "noSerialize") return fn();
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
  store(value: Uint8Array): Buffer {
    validateValue(value, this.bug === "valueOffByOne" ? DEFAULT_MAX_VALUE_BYTES - 1 : DEFAULT_MAX_VALUE_BYTES);
    return this.bug === "putNoCopy" && Buffer.isBuffer(value) ? value : Buffer.from(value);
  }
  setKey(key: string, v: Buffer | null) {
    if (v === null) {
      this.data.delete(key);
      if (this.bug === "recursiveDelete") for (const k of [...this.data.keys()]) if (k.startsWith(`${key}/`)) this.data.delete(k);
    } else {
      this.data.set(key, v);
      const parts = key.split("/");
      for (let i = 1; i < parts.length; i++) this.folders.add(`${parts.slice(0, i).join("/")}/`);
    }
  }

  get(key: string): Promise<Buffer | null> {
    if (this.bug === "syncThrow") this.check(key);
    return (async () => {
      this.check(key);
      return this.read(this.data, key);
    })();
  }
  async put(key: string, value: Uint8Array) {
    this.check(key);
    const v = this.store(value);
    await this.exclusive(async () => {
      this.setKey(key, v);
      this.publish([key]);
    });
  }
  async delete(key: string) {
    this.check(key);
    await this.exclusive(async () => {
      this.setKey(key, null);
      this.publish([key]);
    });
  }
  async exists(key: string) {
    this.check(key);
    if (this.bug === "existsFolder" && [...this.data.keys()].some((k) => k.startsWith(`${key}/`))) return true;
    return this.data.has(key);
  }
  async list(prefix: string) {
    this.checkPrefix(prefix);
    return this.children(this.data.keys(), prefix);
  }
  async listPage(prefix: string, after: string, limit: number) {
    this.checkPrefix(prefix);
    return this.page(this.children(this.data.keys(), prefix), after, limit);
  }
  scan(prefix: string): AsyncIterable<ScanEntry> {
    const self = this;
    return (async function* () {
      self.checkPrefix(prefix);
      let keys = [...self.data.keys()].filter((k) => k.startsWith(prefix));
      if (self.bug === "scanChildrenOnly") keys = keys.filter((k) => !k.slice(prefix.length).includes("/"));
      if (self.bug === "scanIncludesPrefixSibling" && prefix.endsWith("/"))
        keys = [...self.data.keys()].filter((k) => k.startsWith(prefix.slice(0, -1)));
      if (self.bug === "likeWildcard") {
        const re = new RegExp(
          `^${prefix
            .replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
            .replace(/%/g, ".*")
            .replace(/_/g, ".")}`,
          "s",
        );
        keys = [...self.data.keys()].filter((k) => re.test(k));
      }
      keys = self.bug === "scanJsSort" || self.bug === "jsSort" ? keys.sort() : keys.sort(compareKeys);
      for (const key of keys) {
        const v = self.data.get(key);
        if (v) yield { key, value: Buffer.from(v) };
      }
    })();
  }
  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (this.closed && this.bug !== "closeIgnored") throw new StorageError("CLOSED", "closed");
    return this.exclusive(async () => {
      const overlay = new Map<string, Buffer | null>();
      const written: string[] = [];
      const undo = new Map<string, Buffer | null>();
      let settled = false;
      const direct = this.bug === "noRollback" || this.bug === "dirtyReads";
      const active = () => {
        if (settled && this.bug !== "txNoClosed") throw new StorageError("CLOSED", "settled");
      };
      const write = (key: string, v: Buffer | null) => {
        if (options.readOnly && this.bug !== "readOnlyIgnored") throw new StorageError("READ_ONLY", "ro");
        written.push(key);
        if (direct) {
          if (!undo.has(key)) undo.set(key, this.data.get(key) ?? null);
          this.setKey(key, v);
        } else overlay.set(key, v);
      };
      const tx: Transaction = {
        get: async (key) => {
          active();
          this.check(key);
          return this.read(this.bug === "txNoReadOwnList" ? this.view(overlay) : this.view(overlay), key);
        },
        put: async (key, value) => {
          active();
          this.check(key);
          write(key, this.store(value));
        },
        delete: async (key) => {
          active();
          this.check(key);
          write(key, null);
        },
        exists: async (key) => {
          active();
          this.check(key);
          return this.view(overlay).has(key);
        },
        list: async (p) => {
          active();
          this.checkPrefix(p);
          return this.children((this.bug === "txNoReadOwnList" ? this.data : this.view(overlay)).keys(), p);
        },
        listPage: async (p, a, l) => {
          active();
          this.checkPrefix(p);
          return this.page(this.children(this.view(overlay).keys(), p), a, l);
        },
      };
      if (this.getMany && !(this.bug === "getManyMissingInReadOnly" && options.readOnly)) {
        tx.getMany = async (keys) => {
          active();
          for (const key of keys) this.check(key);
          const view = this.bug === "getManyTxCommitted" ? this.data : this.view(overlay);
          return keys.map((key) => this.read(view, key));
        };
      }
      const changed = (): string[] | null => {
        if (this.bug === "feedNullKeys") return null;
        return this.bug === "feedDuplicateKeys" ? written : [...new Set(written)];
      };
      let result: T;
      try {
        result = await fn(tx);
      } catch (e) {
        settled = true;
        if (this.bug === "dirtyReads") for (const [k, v] of undo) this.setKey(k, v);
        if (this.bug === "feedRollback" && written.length > 0) this.publish(changed());
        if (this.bug === "wrapError") throw new Error(`wrapped: ${String(e)}`);
        throw e;
      }
      settled = true;
      for (const [k, v] of overlay) {
        this.setKey(k, v);
        if (this.bug === "tornCommit") await sleep0();
      }
      if (written.length > 0 || this.bug === "feedReadOnlyEmpty") this.publish(changed());
      return result;
    });
  }
  async health(): Promise<HealthStatus> {
    return this.closed ? { status: "unhealthy", latencyMs: 0 } : { status: "healthy", latencyMs: 0.1 };
  }
  async close() {
    this.closed = true;
    if (this.bug === "feedLiveAfterClose" || !this.feedLive) return;
    this.feedLive = false;
    for (const subscriber of [...this.subscribers]) this.tell(() => subscriber.live(false));
    this.subscribers.clear();
  }
}
