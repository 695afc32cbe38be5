import { createHash, randomBytes } from "node:crypto";
import type { StorageBackend, Transaction } from "@egide/storage-core";

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
}

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
    };
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
   * past its maximum. Returns the updated entry.
   */
  async renew(
    tx: Transaction,
    token: string,
    incrementMs: number | undefined,
    maxTtlMs: number,
    now = Date.now(),
  ): Promise<TokenEntry | null> {
    const entry = await this.lookup(token, tx, now);
    if (entry === null || !entry.renewable || entry.expiresAt === null) return entry;
    const limit = Math.min(entry.maxExpiresAt ?? Number.POSITIVE_INFINITY, entry.createdAt + maxTtlMs);
    // An increment of 0 (or none) is the token's own TTL, as in Vault: never "expire now".
    entry.expiresAt = Math.min(now + (incrementMs !== undefined && incrementMs > 0 ? incrementMs : entry.creationTtlMs), limit);
    await tx.put(ID_PREFIX + hashToken(token), Buffer.from(JSON.stringify(entry)));
    return entry;
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
