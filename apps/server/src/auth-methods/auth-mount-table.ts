import { randomBytes, randomUUID } from "node:crypto";
import { deleteTree } from "@egide/storage-core";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import type { CacheCoherence } from "../cache/cache-coherence.js";
import { badRequest } from "../http/vault-error.js";
import { type MountMatch, longestPrefixMount } from "../mounts/longest-prefix.js";
import { DEFAULT_MOUNT_TABLE_CACHE_MS, MOUNT_PURGE_BATCH, entryDescription, tunedDescription } from "../mounts/mount-entry.js";
import type { MountEntry, MountEntryInput } from "../mounts/mount-entry.js";
import { MountEntryTable } from "../mounts/mount-entry-table.js";
import { mountPath, overlappingMount, parseMountPath } from "../mounts/mount-path.js";
import { parseSeconds } from "./auth-method-input.js";

/** Where the auth mount table is stored (through the barrier, so encrypted). */
export const AUTH_MOUNT_TABLE_KEY = "sys/auth-mounts";

/** Every auth method's data lives below `auth/<uuid>/` (Vault's layout). */
export const AUTH_DATA_PREFIX = "auth/";

/** The built-in token method's path: always listed, never enabled, disabled or tuned here. */
export const TOKEN_MOUNT_PATH = "token/";

/** How long a table read from storage is trusted before it is read again. */
export const DEFAULT_AUTH_MOUNT_CACHE_MS = DEFAULT_MOUNT_TABLE_CACHE_MS;

/** How many children a purge lists per storage call when a method is disabled. */
export const AUTH_PURGE_BATCH = MOUNT_PURGE_BATCH;

/** The auth method types this server implements. */
export type AuthMethodType = "approle" | "userpass";

/** The TTL limits of a mount, in seconds; 0 means "the server's". */
export interface AuthMountConfig {
  default_lease_ttl: number;
  max_lease_ttl: number;
}

/**
 * An auth method enabled at a path below `auth/` (its `path` is `approle/`, `team/users/`).
 * Its data lives below `auth/<uuid>/`; its accessor is `auth_<type>_` and 8 hex digits, as
 * Vault names auth accessors.
 */
export interface AuthMount extends MountEntry {
  type: AuthMethodType;
  config: AuthMountConfig;
}

/** What {@link AuthMountTable.enable} takes (the body of `POST /v1/sys/auth/:path`). */
export interface AuthMountInput extends MountEntryInput {
  config?: unknown;
}

/** What {@link AuthMountTable.tune} changes (`POST /v1/sys/auth/:path/tune`). */
export interface AuthMountTuneInput {
  description?: unknown;
  default_lease_ttl?: unknown;
  max_lease_ttl?: unknown;
}

/** Options of {@link AuthMountTable}. */
export interface AuthMountTableOptions {
  /** The server's maximum token TTL, ms: a mount's `max_lease_ttl` may not exceed it. */
  systemMaxTtlMs: number;
  /** How long a table read from storage is used before reading it again (default 1000 ms). */
  cacheMs?: number;
  /** The clock. Default `Date.now`. */
  now?: () => number;
  /** The storage change feed's view: given, the table is cached until it changes, not for `cacheMs`. */
  coherence?: CacheCoherence | undefined;
}

/** The storage prefix of an auth method's data (`auth/<uuid>/`). */
export function authMountStoragePrefix(mount: Pick<AuthMount, "uuid">): string {
  return `${AUTH_DATA_PREFIX}${mount.uuid}/`;
}

/**
 * The auth mount table: which auth method answers which path below `auth/`. It mirrors the
 * secrets mount table (`mounts/mount-table.ts`): JSON at {@link AUTH_MOUNT_TABLE_KEY} through
 * the (encrypting) storage, read through a cache of at most `cacheMs` so that a method enabled
 * or disabled by another instance is seen within that time, and changed only inside the
 * caller's transaction (which reads the table through that transaction, so concurrent changes
 * serialize). The built-in `token/` method is not stored: it is always there.
 */
export class AuthMountTable extends MountEntryTable<AuthMount> {
  readonly #now: () => number;
  readonly #systemMaxSeconds: number;

  constructor(storage: StorageBackend, options: AuthMountTableOptions) {
    const now = options.now ?? Date.now;
    super(storage, AUTH_MOUNT_TABLE_KEY, { cacheMs: options.cacheMs ?? DEFAULT_AUTH_MOUNT_CACHE_MS, now, coherence: options.coherence });
    this.#now = now;
    this.#systemMaxSeconds = Math.floor(options.systemMaxTtlMs / 1000);
  }

  /**
   * Enables an auth method of `input.type` at `path` in `tx`, and runs `initialise` (the
   * method's own first writes, such as its HMAC key) in the same transaction. `token/`, paths
   * that overlap an enabled method (either way), invalid paths, unknown types and TTLs beyond
   * the server's maximum are a 400.
   */
  async enable(
    tx: Transaction,
    path: string,
    input: AuthMountInput,
    initialise?: (tx: Transaction, mount: AuthMount) => Promise<void>,
  ): Promise<AuthMount> {
    const normalised = validateAuthMountPath(path);
    const type = parseType(input.type);
    const description = entryDescription(input.description);
    const config = this.#parseConfig(input.config);
    const entries = await this.stored.read(tx);
    const conflict = overlappingMount([{ path: TOKEN_MOUNT_PATH }, ...entries], normalised);
    if (conflict !== undefined) throw badRequest(`path is already in use at auth/${conflict.path}`);
    const mount: AuthMount = {
      path: normalised,
      type,
      description,
      uuid: randomUUID(),
      accessor: `auth_${type}_${randomBytes(4).toString("hex")}`,
      local: input.local === true,
      seal_wrap: input.seal_wrap === true,
      config,
      created_time: new Date(this.#now()).toISOString(),
    };
    await this.stored.write(tx, [...entries, mount]);
    await initialise?.(tx, mount);
    this.invalidate();
    return mount;
  }

  /**
   * Disables the method at `path` in `tx`: runs `beforePurge` (the revocation of the tokens
   * it issued), then deletes every key of its data in the same transaction, so the method and
   * its data go together or not at all. Returns the removed mount, or null when nothing was
   * enabled there. `token/` cannot be disabled (400).
   */
  async disable(
    tx: Transaction,
    path: string,
    beforePurge?: (tx: Transaction, mount: AuthMount) => Promise<void>,
  ): Promise<AuthMount | null> {
    const normalised = authMountPath(path);
    if (normalised === TOKEN_MOUNT_PATH) throw badRequest("token credential backend cannot be disabled");
    const mount = await this.removeIn(tx, normalised);
    if (mount === null) return null;
    await beforePurge?.(tx, mount);
    await deleteTree(tx, authMountStoragePrefix(mount), { pageSize: AUTH_PURGE_BATCH });
    this.invalidate();
    return mount;
  }

  /**
   * Changes a method's description and TTL limits. A 400 when nothing is enabled at `path`, for
   * `token/` (its limits are the server's configuration), or for limits that contradict each
   * other or exceed the server's maximum.
   */
  async tune(tx: Transaction, path: string, input: AuthMountTuneInput): Promise<AuthMount> {
    const normalised = authMountPath(path);
    if (normalised === TOKEN_MOUNT_PATH) {
      throw badRequest("tuning auth/token/ is not supported by this server: its TTLs are the server's [tokens] configuration");
    }
    const entries = await this.stored.read(tx);
    const index = entries.findIndex((entry) => entry.path === normalised);
    const mount = entries[index];
    if (mount === undefined) throw badRequest(`cannot tune "auth/${normalised}": no auth method at this path`);
    const updated: AuthMount = { ...mount, config: { ...mount.config } };
    updated.description = tunedDescription(input.description, mount.description);
    const config = this.#parseConfig({
      default_lease_ttl: input.default_lease_ttl ?? mount.config.default_lease_ttl,
      max_lease_ttl: input.max_lease_ttl ?? mount.config.max_lease_ttl,
    });
    updated.config = config;
    entries[index] = updated;
    await this.stored.write(tx, entries);
    this.invalidate();
    return updated;
  }

  /** A mount's TTL limits as used for its tokens: its own, or the server's where it has none (seconds). */
  effectiveLimits(mount: AuthMount, systemDefaultMs: number): { defaultTtl: number; maxTtl: number } {
    const maxTtl = mount.config.max_lease_ttl > 0 ? mount.config.max_lease_ttl : this.#systemMaxSeconds;
    const systemDefault = Math.floor(systemDefaultMs / 1000);
    const defaultTtl = Math.min(mount.config.default_lease_ttl > 0 ? mount.config.default_lease_ttl : systemDefault, maxTtl);
    return { defaultTtl, maxTtl };
  }

  #parseConfig(value: unknown): AuthMountConfig {
    if (value === undefined || value === null) return { default_lease_ttl: 0, max_lease_ttl: 0 };
    if (typeof value !== "object" || Array.isArray(value)) throw badRequest("config must be an object");
    const raw = value as Record<string, unknown>;
    const defaultTtl = parseSeconds(Object.hasOwn(raw, "default_lease_ttl") ? raw.default_lease_ttl : undefined, "default_lease_ttl");
    const maxTtl = parseSeconds(Object.hasOwn(raw, "max_lease_ttl") ? raw.max_lease_ttl : undefined, "max_lease_ttl");
    if (maxTtl > this.#systemMaxSeconds) {
      throw badRequest(`max_lease_ttl (${maxTtl}s) cannot be greater than the server's max_lease_ttl (${this.#systemMaxSeconds}s)`);
    }
    const effectiveMax = maxTtl > 0 ? maxTtl : this.#systemMaxSeconds;
    if (defaultTtl > effectiveMax) {
      throw badRequest(`default_lease_ttl (${defaultTtl}s) cannot be greater than max_lease_ttl (${effectiveMax}s)`);
    }
    return { default_lease_ttl: defaultTtl, max_lease_ttl: maxTtl };
  }
}

/** The method of `mounts` that answers `path` (see {@link AuthMountTable.find}). */
export function findIn(mounts: readonly AuthMount[], path: string): MountMatch<AuthMount> | null {
  return longestPrefixMount(mounts, path);
}

/** The table form of a mount path: with a trailing `/` (`approle` → `approle/`). */
export function authMountPath(path: string): string {
  return mountPath(path);
}

/**
 * The table form of `path`, checked to be a path a method may be enabled at; a 400 otherwise
 * (`token/` is refused by {@link AuthMountTable.enable} as a path in use).
 */
export function validateAuthMountPath(path: string): string {
  return parseMountPath(path);
}

function parseType(value: unknown): AuthMethodType {
  if (typeof value !== "string" || value === "") throw badRequest("backend type must be specified as a string");
  if (value === "approle" || value === "userpass") return value;
  if (value === "token") throw badRequest("token credential backend cannot be enabled again: it is always mounted at auth/token/");
  throw badRequest(`unsupported auth method type ${JSON.stringify(value.slice(0, 64))}: this server implements "approle" and "userpass"`);
}
