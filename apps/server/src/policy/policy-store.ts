import type { StorageBackend, Transaction } from "@egide/storage-core";
import type { CacheCoherence } from "../cache/cache-coherence.js";
import { badRequest } from "../http/vault-error.js";
import { Acl } from "./acl.js";
import { DEFAULT_POLICY_HCL, RESPONSE_WRAPPING_POLICY_HCL } from "./default-policies.js";
import { parsePolicy } from "./parse-policy.js";
import { DEFAULT_POLICY_NAME, RESPONSE_WRAPPING_POLICY_NAME, ROOT_POLICY_NAME, validatePolicyName } from "./policy.js";
import type { Policy, PolicyFormat } from "./policy.js";

/** Where policies are stored, through the storage given (the encrypting barrier). */
export const POLICY_KEY_PREFIX = "sys/policy/";

/** Options of {@link PolicyStore}. */
export interface PolicyStoreOptions {
  /**
   * How long a policy read from storage is reused, in milliseconds (default 1000): a change
   * made by another server instance sharing the database is seen within this delay. Changes
   * made through this store are seen at once. 0 disables the cache.
   */
  cacheMs?: number;
  /** The clock, for tests. */
  now?: () => number;
  /**
   * The storage change feed's view. Given, a policy is cached until the feed says it changed
   * (not for `cacheMs`), and nothing is cached while the feed is not live.
   */
  coherence?: CacheCoherence | undefined;
}

/** A stored policy: the text as written (returned by reads), re-parsed when loaded. */
interface StoredPolicy {
  name: string;
  raw: string;
  format: PolicyFormat;
}

interface CacheEntry {
  policy: Policy | null;
  expires: number;
}

/** The `root` policy: no rules, never stored; an ACL built from it allows everything. */
const ROOT_POLICY: Policy = Object.freeze({ name: ROOT_POLICY_NAME, rules: [], raw: "", format: "hcl" });

// The built-in `default` policy, parsed once.
let builtInDefault: Promise<Policy> | undefined;
function builtInDefaultPolicy(): Promise<Policy> {
  builtInDefault ??= parsePolicy(DEFAULT_POLICY_NAME, DEFAULT_POLICY_HCL).catch((error: unknown) => {
    builtInDefault = undefined;
    throw error;
  });
  return builtInDefault;
}

// The built-in `response-wrapping` policy, parsed once.
let builtInResponseWrapping: Promise<Policy> | undefined;
function responseWrappingPolicy(): Promise<Policy> {
  builtInResponseWrapping ??= parsePolicy(RESPONSE_WRAPPING_POLICY_NAME, RESPONSE_WRAPPING_POLICY_HCL).catch((error: unknown) => {
    builtInResponseWrapping = undefined;
    throw error;
  });
  return builtInResponseWrapping;
}

const MAX_CACHED_ACLS = 1000;

/**
 * The ACL policies: stored through the storage given (the encrypting barrier) at
 * `sys/policy/<name>` as JSON `{name, raw, format}`, parsed when loaded and cached per name for
 * at most `cacheMs`.
 *
 * `default` exists without being written (the built-in text of `default-policies.ts`) until a
 * write replaces it; it can be written but not deleted. `root` is implicit, never stored, and
 * can be neither written nor deleted. `response-wrapping` (the policy of response-wrapping
 * tokens) is built in, never read from storage, never listed, and can be neither written nor
 * deleted (as in Vault).
 *
 * Writes and deletes happen inside the caller's transaction (so they commit with the request's
 * audit row). The cache entry of the name is dropped at once, and the name is not cached again
 * for `cacheMs` (so a read racing the uncommitted transaction cannot pin the old text);
 * callers should also call {@link PolicyStore.invalidate} once the transaction committed.
 */
export class PolicyStore {
  readonly #storage: StorageBackend;
  readonly #cacheMs: number;
  readonly #now: () => number;
  readonly #coherence: CacheCoherence | undefined;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #loading = new Map<string, { generation: number; promise: Promise<Policy | null> }>();
  // Bumped by every local change or invalidation of a name: a load started before it is not cached.
  readonly #generations = new Map<string, number>();
  // Names changed locally recently: not cached until then.
  readonly #uncachedUntil = new Map<string, number>();
  readonly #acls = new Map<string, { policies: Policy[]; acl: Acl }>();
  // The last policy parsed per name: reused while the stored text is unchanged (no re-parse,
  // and the ACLs built from it stay valid).
  readonly #parsed = new Map<string, Policy>();

  constructor(storage: StorageBackend, options: PolicyStoreOptions = {}) {
    this.#storage = storage;
    this.#cacheMs = Math.max(0, options.cacheMs ?? 1000);
    this.#now = options.now ?? Date.now;
    this.#coherence = options.coherence;
    this.#coherence?.onInvalidate((keys) => {
      if (keys === null) this.invalidate();
      else for (const key of keys) if (key.startsWith(POLICY_KEY_PREFIX)) this.invalidate(key.slice(POLICY_KEY_PREFIX.length));
    });
  }

  /**
   * The policy named `name` (canonical: see `validatePolicyName`), or `null` when there is none
   * (a name that is not canonical has none). `root` gives a policy without rules; `default`
   * gives the built-in text unless it was overwritten.
   */
  async get(name: string): Promise<Policy | null> {
    let normalized: string;
    try {
      normalized = validatePolicyName(name);
    } catch {
      return null;
    }
    if (normalized === ROOT_POLICY_NAME) return ROOT_POLICY;
    // Built in: whatever the storage holds under this name (a write from before the name was
    // reserved) is never what a wrapping token is granted.
    if (normalized === RESPONSE_WRAPPING_POLICY_NAME) return responseWrappingPolicy();
    const coherence = this.#coherence;
    if (coherence !== undefined) {
      // The feed is not live: every read goes to storage, and nothing read is kept.
      if (!coherence.coherent) return this.#read(normalized);
      const cached = this.#cache.get(normalized);
      if (cached !== undefined) return cached.policy;
      return this.#load(normalized);
    }
    const cached = this.#cache.get(normalized);
    if (cached !== undefined && cached.expires > this.#now()) return cached.policy;
    return this.#load(normalized);
  }

  /**
   * Parses `policy` (unless already parsed) and stores it under `name` inside `tx`. Throws a
   * 400 `VaultError` for a name that is not canonical, an invalid text, and for `root`.
   */
  async write(tx: Transaction, name: string, policy: string | Policy): Promise<Policy> {
    const normalized = validatePolicyName(name);
    if (normalized === ROOT_POLICY_NAME || normalized === RESPONSE_WRAPPING_POLICY_NAME) {
      throw badRequest(`cannot update "${normalized}" policy`);
    }
    const parsed = typeof policy === "string" ? await parsePolicy(normalized, policy) : { ...policy, name: normalized };
    const stored: StoredPolicy = { name: normalized, raw: parsed.raw, format: parsed.format };
    await tx.put(POLICY_KEY_PREFIX + normalized, Buffer.from(JSON.stringify(stored), "utf8"));
    this.#changedLocally(normalized);
    return parsed;
  }

  /**
   * Deletes the policy `name` inside `tx` (nothing happens when there is none). Throws a 400
   * `VaultError` for `root`, `default` and names that are not canonical.
   */
  async delete(tx: Transaction, name: string): Promise<void> {
    const normalized = validatePolicyName(name);
    if (normalized === ROOT_POLICY_NAME || normalized === RESPONSE_WRAPPING_POLICY_NAME) {
      throw badRequest(`cannot delete "${normalized}" policy`);
    }
    if (normalized === DEFAULT_POLICY_NAME) throw badRequest("cannot delete default policy");
    await tx.delete(POLICY_KEY_PREFIX + normalized);
    this.#changedLocally(normalized);
  }

  /** Every policy name, sorted; `default` and `root` always included, `response-wrapping` never. */
  async list(): Promise<string[]> {
    const keys = await this.#storage.list(POLICY_KEY_PREFIX);
    const names = new Set(keys.filter((key) => !key.endsWith("/")));
    // Not listed, as in Vault: it is nobody's to read, write or assign.
    names.delete(RESPONSE_WRAPPING_POLICY_NAME);
    names.add(DEFAULT_POLICY_NAME);
    names.add(ROOT_POLICY_NAME);
    return [...names].sort();
  }

  /**
   * The ACL of a token holding the policies `names` (canonical, as tokens store them; duplicates
   * ignored). Unknown names are ignored, as in Vault. `root` alone gives the root ACL; `root`
   * with other policies throws, as in Vault.
   */
  async acl(names: readonly string[]): Promise<Acl> {
    const normalized = [...new Set(names)].sort();
    if (normalized.includes(ROOT_POLICY_NAME)) {
      if (normalized.length !== 1) throw new Error("other policies present along with root");
      return Acl.root();
    }
    const found = await Promise.all(normalized.map((name) => this.get(name)));
    const policies = found.filter((policy): policy is Policy => policy !== null);
    const key = normalized.join("\n");
    const cached = this.#acls.get(key);
    if (cached !== undefined && sameObjects(cached.policies, policies)) return cached.acl;
    const acl = Acl.fromPolicies(policies);
    if (this.#acls.size >= MAX_CACHED_ACLS) this.#acls.clear();
    this.#acls.set(key, { policies, acl });
    return acl;
  }

  /**
   * Drops the cached copy of `name` (of every policy without a name), so the next read goes to
   * the storage. Call it after a transaction that wrote or deleted a policy committed.
   */
  invalidate(name?: string): void {
    if (name === undefined) {
      for (const cachedName of this.#cache.keys()) this.#bump(cachedName);
      for (const loadingName of this.#loading.keys()) this.#bump(loadingName);
      this.#cache.clear();
      return;
    }
    this.#bump(name);
    this.#cache.delete(name);
  }

  #changedLocally(name: string): void {
    this.invalidate(name);
    // With the change feed, the commit's own invalidation drops whatever a racing read kept.
    if (this.#cacheMs > 0 && this.#coherence === undefined) this.#uncachedUntil.set(name, this.#now() + this.#cacheMs);
  }

  #bump(name: string): void {
    this.#generations.set(name, (this.#generations.get(name) ?? 0) + 1);
  }

  // Reads `name` from the storage, one read at a time per name, and caches the result unless
  // the name changed locally meanwhile.
  #load(name: string): Promise<Policy | null> {
    const generation = this.#generations.get(name) ?? 0;
    const pending = this.#loading.get(name);
    if (pending !== undefined && pending.generation === generation) return pending.promise;

    const started = this.#now();
    const promise = this.#read(name).then((policy) => {
      const now = this.#now();
      const uncachedUntil = this.#uncachedUntil.get(name);
      if (uncachedUntil !== undefined && uncachedUntil <= now) this.#uncachedUntil.delete(name);
      const unchanged = (this.#generations.get(name) ?? 0) === generation;
      const cacheable =
        this.#coherence !== undefined
          ? unchanged && this.#coherence.coherent
          : this.#cacheMs > 0 && unchanged && (uncachedUntil === undefined || uncachedUntil <= now);
      // The entry expires cacheMs after the read started, so what it holds is never older than that.
      if (cacheable) this.#cache.set(name, { policy, expires: started + this.#cacheMs });
      return policy;
    });
    const entry = { generation, promise };
    this.#loading.set(name, entry);
    const clear = (): void => {
      if (this.#loading.get(name) === entry) this.#loading.delete(name);
    };
    promise.then(clear, clear);
    return promise;
  }

  async #read(name: string): Promise<Policy | null> {
    const value = await this.#storage.get(POLICY_KEY_PREFIX + name);
    if (value === null) {
      this.#parsed.delete(name);
      return name === DEFAULT_POLICY_NAME ? builtInDefaultPolicy() : null;
    }
    let stored: StoredPolicy;
    try {
      stored = JSON.parse(value.toString("utf8")) as StoredPolicy;
    } catch {
      throw new Error(`the stored policy "${name}" is not valid JSON`);
    }
    if (typeof stored.raw !== "string") throw new Error(`the stored policy "${name}" has no text`);
    // Unchanged since the last read: keep the parsed policy (and the ACLs built from it).
    const previous = this.#parsed.get(name);
    if (previous !== undefined && previous.raw === stored.raw) return previous;
    try {
      const policy = await parsePolicy(name, stored.raw);
      this.#parsed.set(name, policy);
      return policy;
    } catch (error) {
      throw new Error(`the stored policy "${name}" no longer parses: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

function sameObjects<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}
