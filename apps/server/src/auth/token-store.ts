import { createHash, randomBytes } from "node:crypto";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import { renewalTtlMs } from "./token-renewal-ttl.js";

export { explicitMaxTtlMs } from "./token-renewal-ttl.js";

/** A token as stored: everything about it except the token itself, which is kept only as a hash. */
export interface TokenEntry {
  accessor: string;
  policies: string[];
  displayName: string;
  meta: Record<string, string>;
  /** Creation time, ms since the epoch. */
  createdAt: number;
  /** The TTL given at creation, ms (0: never expires, for the root token). */
  creationTtlMs: number;
  /** When it expires, ms since the epoch; `null` for never. */
  expiresAt: number | null;
  /** The latest `expiresAt` renewals may reach; `null` for no limit. */
  maxExpiresAt: number | null;
  renewable: boolean;
  /** The accessor of the token that created it; `null` for orphans (root). */
  parentAccessor: string | null;
  /** Vault's `period` (ms): each renewal resets the TTL to it. Absent (entries of older versions) or 0: not periodic. */
  periodMs?: number;
  /**
   * Uses left (Vault's `num_uses`): absent or 0 for no limit. Each authenticated request takes
   * one ({@link TokenStore.use}); the token is revoked when the last is taken. `-1` only in the
   * entry handed to the request that took the last use (the stored token is gone by then).
   */
  numUses?: number;
  /** The token role it was created against (`auth/token/create/<role>`), if any. */
  role?: string;
  /** Vault's creation path (`auth/token/create`, `auth/token/create/<role>[/<suffix>]`, a login path). */
  path?: string;
  /** When it was last renewed, ms since the epoch. */
  lastRenewedAt?: number;
}

/** What {@link TokenStore.create} needs. */
export interface NewToken {
  policies: string[];
  displayName: string;
  meta?: Record<string, string>;
  /** Positive; 0 (never expires) only for the initial root token: root policy alone, no parent. */
  ttlMs: number;
  /** The most renewals can extend to, from creation; 0: no limit beyond the server's maximum. */
  maxTtlMs: number;
  renewable: boolean;
  parentAccessor: string | null;
  /** Vault's `period`, ms (0 or absent: not periodic); `ttlMs` should be the period, capped. */
  periodMs?: number;
  /** Vault's `num_uses` (0 or absent: no limit). */
  numUses?: number;
  /** The token role used, if any. */
  role?: string;
  /** The creation path recorded for lookups (default `auth/token/create`). */
  path?: string;
}

/** The outcome of a renewal: the updated entry and the TTL granted, or Vault's refusal. */
export type TokenRenewal =
  | { ok: true; entry: TokenEntry; grantedMs: number; warnings: string[] }
  | { ok: false; reason: "not-found" | "not-renewable" | "past-max"; message: string };

const ID_PREFIX = "sys/token/id/";
const ACCESSOR_PREFIX = "sys/token/accessor/";
const PARENT_PREFIX = "sys/token/parent/";
/** Token strings start with this, so a leaked one is recognisable (secret scanners, logs). */
export const TOKEN_PREFIX = "egs.";

/**
 * Tokens, stored through the encrypting barrier and only as SHA-256 hashes: the store can
 * check a token but never give one back. A token is 32 random bytes (so an unsalted hash is
 * as strong as the token); its accessor is a separate random id that audit rows and admin
 * operations use instead. Every lookup reads the storage, so a token created or revoked on
 * one server instance is seen at once by every other instance sharing the database.
 */
export class TokenStore {
  constructor(readonly storage: StorageBackend) {}

  /** Creates a token inside `tx`; returns the token string (shown once) and its entry. */
  async create(tx: Transaction, request: NewToken, now = Date.now()): Promise<{ token: string; entry: TokenEntry }> {
    // Fail closed: only the initial root token (root policy alone, no parent) lives without an
    // expiry. Any other token without a TTL is a caller's bug, refused rather than made eternal.
    const initialRoot = request.policies.length === 1 && request.policies[0] === "root" && request.parentAccessor === null;
    if (!(request.ttlMs > 0) && !(request.ttlMs === 0 && initialRoot)) throw new RangeError("a token needs a positive TTL");
    if (request.maxTtlMs > 0 && request.ttlMs > request.maxTtlMs) throw new RangeError("a token's TTL cannot exceed its explicit maximum");
    const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
    const entry: TokenEntry = {
      accessor: randomBytes(12).toString("base64url"),
      policies: [...new Set(request.policies)].sort(),
      displayName: request.displayName,
      meta: request.meta ?? {},
      createdAt: now,
      creationTtlMs: request.ttlMs,
      expiresAt: request.ttlMs > 0 ? now + request.ttlMs : null,
      maxExpiresAt: request.maxTtlMs > 0 ? now + request.maxTtlMs : null,
      renewable: request.renewable && request.ttlMs > 0,
      parentAccessor: request.parentAccessor,
      ...(request.periodMs !== undefined && request.periodMs > 0 ? { periodMs: request.periodMs } : {}),
      ...(request.numUses !== undefined && request.numUses > 0 ? { numUses: request.numUses } : {}),
      ...(request.role === undefined ? {} : { role: request.role }),
      ...(request.path === undefined ? {} : { path: request.path }),
    };
    if (entry.numUses !== undefined && !Number.isSafeInteger(entry.numUses)) throw new RangeError("num_uses must be an integer");
    const hash = hashToken(token);
    await tx.put(ID_PREFIX + hash, Buffer.from(JSON.stringify(entry)));
    await tx.put(ACCESSOR_PREFIX + entry.accessor, Buffer.from(hash));
    if (entry.parentAccessor) await tx.put(`${PARENT_PREFIX}${entry.parentAccessor}/${entry.accessor}`, Buffer.alloc(0));
    return { token, entry };
  }

  /**
   * The live entry of `token`, or `null` when it is unknown, malformed or expired, or when any
   * token it descends from expired (as in Vault, a token's expiry ends its whole tree, so a
   * short-lived token cannot outlive itself through children it created).
   */
  async lookup(token: string, reader: Pick<Transaction, "get"> = this.storage, now = Date.now()): Promise<TokenEntry | null> {
    if (!isWellFormed(token)) return null;
    const raw = await reader.get(ID_PREFIX + hashToken(token));
    if (raw === null) return null;
    const entry = JSON.parse(raw.toString("utf8")) as TokenEntry;
    if (isExpired(entry, now)) return null;
    return (await this.#ancestorsLive(entry, reader, now)) ? entry : null;
  }

  /** The live entry with `accessor` (its ancestors live too), or `null`. */
  async lookupAccessor(
    accessor: string,
    reader: Pick<Transaction, "get"> = this.storage,
    now = Date.now(),
  ): Promise<{ hash: string; entry: TokenEntry } | null> {
    const found = await this.#byAccessor(accessor, reader);
    if (found === null || isExpired(found.entry, now)) return null;
    return (await this.#ancestorsLive(found.entry, reader, now)) ? found : null;
  }

  async #byAccessor(accessor: string, reader: Pick<Transaction, "get">): Promise<{ hash: string; entry: TokenEntry } | null> {
    if (!/^[A-Za-z0-9_-]{16}$/.test(accessor)) return null;
    const hash = await reader.get(ACCESSOR_PREFIX + accessor);
    if (hash === null) return null;
    const raw = await reader.get(ID_PREFIX + hash.toString("utf8"));
    if (raw === null) return null;
    return { hash: hash.toString("utf8"), entry: JSON.parse(raw.toString("utf8")) as TokenEntry };
  }

  // Walks up the parent chain: a revoked parent took its children with it, but an expired one
  // is only noticed here. The chain is bounded; a longer one is treated as not live.
  async #ancestorsLive(entry: TokenEntry, reader: Pick<Transaction, "get">, now: number): Promise<boolean> {
    let parent = entry.parentAccessor;
    for (let depth = 0; parent !== null; depth++) {
      if (depth >= MAX_TOKEN_DEPTH) return false;
      const found = await this.#byAccessor(parent, reader);
      if (found === null || isExpired(found.entry, now)) return false;
      parent = found.entry.parentAccessor;
    }
    return true;
  }

  /**
   * Extends a renewable token by `incrementMs` from now (default: its creation TTL), never
   * past its maximum. Returns the updated entry (`null` for an unknown token; the entry as it
   * was for one that cannot be renewed).
   */
  async renew(
    tx: Transaction,
    token: string,
    incrementMs: number | undefined,
    maxTtlMs: number,
    now = Date.now(),
  ): Promise<TokenEntry | null> {
    const entry = await this.lookup(token, tx, now);
    if (entry === null) return null;
    const result = await this.renewAccessor(tx, entry.accessor, incrementMs ?? 0, maxTtlMs, now);
    return result.ok ? result.entry : entry;
  }

  /**
   * Renews the live token with `accessor` as Vault does (`framework.CalculateTTL`): a periodic
   * token gets its period again; another gets `incrementMs` (or its creation TTL), capped so
   * that it never outlives its creation time plus the smaller of `explicit_max_ttl` and the
   * server's `maxTtlMs`. The TTL granted is whole seconds, and is what the caller reports.
   */
  async renewAccessor(tx: Transaction, accessor: string, incrementMs: number, maxTtlMs: number, now = Date.now()): Promise<TokenRenewal> {
    const found = await this.lookupAccessor(accessor, tx, now);
    if (found === null) return { ok: false, reason: "not-found", message: "token not found" };
    const { entry, hash } = found;
    if (!entry.renewable || entry.expiresAt === null) return { ok: false, reason: "not-renewable", message: "lease is not renewable" };
    const granted = renewalTtlMs(entry, incrementMs, maxTtlMs, now);
    if (!granted.ok) return granted;
    entry.expiresAt = Math.min(now + granted.ttlMs, entry.maxExpiresAt ?? Number.POSITIVE_INFINITY);
    entry.lastRenewedAt = now;
    await tx.put(ID_PREFIX + hash, Buffer.from(JSON.stringify(entry)));
    return { ok: true, entry, grantedMs: granted.ttlMs, warnings: granted.warnings };
  }

  /**
   * Takes one use of a use-limited token (Vault's `UseToken`), in its own transaction so that
   * concurrent requests on any instance sharing the database never take the same use twice.
   * Taking the last use revokes the token (and its tree) in that same transaction; the entry
   * returned then says `numUses: -1`. Returns `null` when the token is not live (any more).
   */
  async use(token: string, now = Date.now()): Promise<TokenEntry | null> {
    return this.storage.transaction(async (tx) => {
      const entry = await this.lookup(token, tx, now);
      if (entry === null) return null;
      const uses = entry.numUses ?? 0;
      if (uses <= 0) return entry;
      if (uses === 1) {
        await this.revokeAccessor(tx, entry.accessor);
        return { ...entry, numUses: -1 };
      }
      entry.numUses = uses - 1;
      await tx.put(ID_PREFIX + hashToken(token), Buffer.from(JSON.stringify(entry)));
      return entry;
    });
  }

  /** Revokes `token` and, as Vault does, every token created from it (recursively). */
  async revoke(tx: Transaction, token: string): Promise<boolean> {
    const raw = isWellFormed(token) ? await tx.get(ID_PREFIX + hashToken(token)) : null;
    if (raw === null) return false;
    const entry = JSON.parse(raw.toString("utf8")) as TokenEntry;
    await this.revokeAccessor(tx, entry.accessor);
    return true;
  }

  /** Revokes the token with `accessor` and its descendants. */
  async revokeAccessor(tx: Transaction, accessor: string): Promise<void> {
    const hash = await tx.get(ACCESSOR_PREFIX + accessor);
    if (hash !== null) {
      const raw = await tx.get(ID_PREFIX + hash.toString("utf8"));
      const entry = raw === null ? null : (JSON.parse(raw.toString("utf8")) as TokenEntry);
      await tx.delete(ID_PREFIX + hash.toString("utf8"));
      await tx.delete(ACCESSOR_PREFIX + accessor);
      if (entry?.parentAccessor) await tx.delete(`${PARENT_PREFIX}${entry.parentAccessor}/${accessor}`);
    }
    for (const child of await tx.list(`${PARENT_PREFIX}${accessor}/`)) {
      await this.revokeAccessor(tx, child);
    }
  }

  /**
   * Revokes `token` but not its children (Vault's revoke-orphan): each child loses its parent
   * and becomes an orphan, living on until its own expiry. Returns whether the token existed.
   */
  async revokeOrphan(tx: Transaction, token: string): Promise<boolean> {
    const hash = isWellFormed(token) ? hashToken(token) : null;
    const raw = hash === null ? null : await tx.get(ID_PREFIX + hash);
    if (hash === null || raw === null) return false;
    const entry = JSON.parse(raw.toString("utf8")) as TokenEntry;
    await tx.delete(ID_PREFIX + hash);
    await tx.delete(ACCESSOR_PREFIX + entry.accessor);
    if (entry.parentAccessor) await tx.delete(`${PARENT_PREFIX}${entry.parentAccessor}/${entry.accessor}`);
    for (const child of await tx.list(`${PARENT_PREFIX}${entry.accessor}/`)) {
      const found = await this.#byAccessor(child, tx);
      if (found !== null) {
        found.entry.parentAccessor = null;
        await tx.put(ID_PREFIX + found.hash, Buffer.from(JSON.stringify(found.entry)));
      }
      await tx.delete(`${PARENT_PREFIX}${entry.accessor}/${child}`);
    }
    return true;
  }

  /** The accessors of every live token (Vault's `LIST auth/token/accessors`), sorted. */
  async listAccessors(reader: Pick<Transaction, "get" | "list"> = this.storage, now = Date.now()): Promise<string[]> {
    const live: string[] = [];
    for (const accessor of await reader.list(ACCESSOR_PREFIX)) {
      if ((await this.lookupAccessor(accessor, reader, now)) !== null) live.push(accessor);
    }
    return live.sort();
  }

  /**
   * Vault's token tidy: revokes expired tokens with their trees (nothing here revokes them at
   * expiry: they were only refused), drops accessor entries without a token, and parent index
   * entries of tokens that are gone (children of a parent that is gone become orphans).
   */
  async tidy(tx: Transaction, now = Date.now()): Promise<{ revoked: number; accessors: number; parentEntries: number; orphaned: number }> {
    const counts = { revoked: 0, accessors: 0, parentEntries: 0, orphaned: 0 };
    for (const accessor of await tx.list(ACCESSOR_PREFIX)) {
      const found = await this.#byAccessor(accessor, tx);
      if (found === null) {
        if ((await tx.get(ACCESSOR_PREFIX + accessor)) !== null) {
          await tx.delete(ACCESSOR_PREFIX + accessor);
          counts.accessors++;
        }
      } else if (isExpired(found.entry, now)) {
        await this.revokeAccessor(tx, accessor);
        counts.revoked++;
      }
    }
    for (const folder of await tx.list(PARENT_PREFIX)) {
      const parent = folder.endsWith("/") ? folder.slice(0, -1) : folder;
      const parentLives = (await tx.get(ACCESSOR_PREFIX + parent)) !== null;
      for (const child of await tx.list(`${PARENT_PREFIX}${parent}/`)) {
        const found = await this.#byAccessor(child, tx);
        if (parentLives && found !== null) continue;
        if (found !== null) {
          found.entry.parentAccessor = null;
          await tx.put(ID_PREFIX + found.hash, Buffer.from(JSON.stringify(found.entry)));
          counts.orphaned++;
        }
        await tx.delete(`${PARENT_PREFIX}${parent}/${child}`);
        counts.parentEntries++;
      }
    }
    return counts;
  }
}

const MAX_TOKEN_DEPTH = 64;

// An entry past its expiry, or past its explicit maximum whatever its expiry says.
function isExpired(entry: TokenEntry, now: number): boolean {
  return (entry.expiresAt !== null && entry.expiresAt <= now) || (entry.maxExpiresAt !== null && entry.maxExpiresAt <= now);
}

/** SHA-256 of the token, hex: the storage key of its entry. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

// A token is at most a few hundred characters of printable ASCII; anything else is not one
// of ours and is refused before it reaches a storage key.
function isWellFormed(token: string): boolean {
  return token.length > 0 && token.length <= 256 && /^[\x21-\x7e]+$/.test(token);
}
