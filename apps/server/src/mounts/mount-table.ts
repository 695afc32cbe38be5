import { randomBytes, randomUUID } from "node:crypto";
import { deleteTree } from "@egide/storage-core";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import type { CacheCoherence } from "../cache/cache-coherence.js";
import { type VaultError, badRequest } from "../http/vault-error.js";
import { DEFAULT_MOUNT_TABLE_CACHE_MS, MOUNT_PURGE_BATCH, entryDescription, tunedDescription } from "./mount-entry.js";
import type { MountEntry, MountEntryInput } from "./mount-entry.js";
import { MountEntryTable } from "./mount-entry-table.js";
import { mountPath, overlappingMount, parseMountPath } from "./mount-path.js";

export { mountPath } from "./mount-path.js";

/** Where the mount table is stored (through the barrier, so encrypted). */
export const MOUNT_TABLE_KEY = "core/mounts";

/** Every mount's data lives below `logical/<uuid>/`. */
export const LOGICAL_PREFIX = "logical/";

/** Paths that belong to the server itself and can never be mounted over (Vault's protected mounts). */
export const RESERVED_MOUNT_PREFIXES = ["sys/", "auth/", "cubbyhole/", "identity/", "audit/"] as const;

/** The path and description of the mount made on a fresh install. */
export const DEFAULT_MOUNT_PATH = "secret/";
export const DEFAULT_MOUNT_DESCRIPTION = "key/value secret storage";

/** How long a table read from storage is trusted before it is read again. */
export const DEFAULT_MOUNT_CACHE_MS = DEFAULT_MOUNT_TABLE_CACHE_MS;

/** How many children a purge lists per storage call when a mount is disabled. */
export const PURGE_BATCH = MOUNT_PURGE_BATCH;

/** The versions of the KV secrets engine: 1 (Vault's passthrough backend) and 2 (versioned). */
export type KvVersion = "1" | "2";

/**
 * A secrets engine mounted at a path: the KV engine, version 1 or 2. Its data lives below
 * `logical/<uuid>/`; its accessor is `kv_` and 8 hex digits, as Vault names mount accessors.
 */
export interface Mount extends MountEntry {
  type: "kv";
  /** The KV version; fixed for the mount's life (an upgrade from 1 to 2 is refused). */
  options: { version: KvVersion };
}

/** What `enable` (and `POST /v1/sys/mounts/:path`) takes. */
export interface MountInput extends MountEntryInput {
  options?: unknown;
}

/** What `tune` (`POST /v1/sys/mounts/:path/tune`) changes. */
export interface MountTuneInput {
  description?: unknown;
  options?: unknown;
}

/** The storage prefix of a mount's data (`logical/<uuid>/`). */
export function mountStoragePrefix(mount: Pick<Mount, "uuid">): string {
  return `${LOGICAL_PREFIX}${mount.uuid}/`;
}

/** Options of {@link MountTable}. */
export interface MountTableOptions {
  /** How long a table read from storage is used before reading it again (default 1000 ms). */
  cacheMs?: number;
  /** The clock (tests move it). Default `Date.now`. */
  now?: () => number;
  /** The storage change feed's view: given, the table is cached until it changes, not for `cacheMs`. */
  coherence?: CacheCoherence | undefined;
}

/**
 * The mount table: which secrets engine answers which path.
 *
 * Stored as JSON at `core/mounts` through the (encrypting) storage it is given. Reads use a
 * copy cached for at most `cacheMs`, so that a mount enabled or disabled by another server
 * instance on the same storage is seen within that time; local changes invalidate the cache
 * (call {@link invalidate} again after the change's transaction commits). Changes take the
 * caller's transaction and read the table through it, so concurrent changes serialize.
 */
export class MountTable extends MountEntryTable<Mount> {
  readonly #storage: StorageBackend;
  readonly #now: () => number;

  constructor(storage: StorageBackend, options: MountTableOptions = {}) {
    const now = options.now ?? Date.now;
    super(storage, MOUNT_TABLE_KEY, { cacheMs: options.cacheMs ?? DEFAULT_MOUNT_CACHE_MS, now, coherence: options.coherence });
    this.#storage = storage;
    this.#now = now;
  }

  /**
   * Mounts a KV engine at `path` in `tx`, with Vault's spellings: `type: "kv"` is version 1
   * unless `options.version` is "2" (as in Vault, `kv` without a version is version 1);
   * `type: "kv-v1"` and `type: "kv-v2"` are aliases that fix the version (a contradicting
   * `options.version` is a 400). Any other type or version is a 400, as is a reserved path, an
   * invalid one, or one that overlaps an existing mount (either way).
   */
  async enable(tx: Transaction, path: string, input: MountInput): Promise<Mount> {
    const normalised = validateMountPath(path);
    const { version, description, local, sealWrap } = parseMountInput(input);
    const entries = await this.stored.read(tx);
    const conflict = overlappingMount(entries, normalised);
    if (conflict !== undefined) throw badRequest(`path is already in use at ${conflict.path}`);
    const mount: Mount = {
      path: normalised,
      type: "kv",
      options: { version },
      description,
      uuid: randomUUID(),
      accessor: `kv_${randomBytes(4).toString("hex")}`,
      local,
      seal_wrap: sealWrap,
      created_time: new Date(this.#now()).toISOString(),
    };
    await this.stored.write(tx, [...entries, mount]);
    this.invalidate();
    return mount;
  }

  /**
   * Unmounts `path` in `tx` and deletes every key of its data (listed and deleted in batches,
   * inside the same transaction: the mount and its data go together or not at all). Returns
   * the removed mount, or null when nothing was mounted there (Vault answers 204 either way).
   */
  async disable(tx: Transaction, path: string): Promise<Mount | null> {
    const normalised = mountPath(path);
    assertNotReserved(normalised, "unmount");
    const mount = await this.removeIn(tx, normalised);
    if (mount === null) return null;
    // Every key below the mount's prefix, at most PURGE_BATCH children listed per call.
    await deleteTree(tx, mountStoragePrefix(mount), { pageSize: PURGE_BATCH });
    this.invalidate();
    return mount;
  }

  /**
   * Changes a mount's description (`POST sys/mounts/:path/tune`). `options.version` may only
   * repeat the mount's version: a downgrade is refused with Vault's "cannot downgrade mount
   * from version 2", and an upgrade from 1 to 2 (which Vault runs by rewriting every secret
   * into the versioned layout) is refused too. Returns the updated mount; a 400 when nothing
   * is mounted at `path`.
   */
  async tune(tx: Transaction, path: string, input: MountTuneInput): Promise<Mount> {
    const normalised = mountPath(path);
    const entries = await this.stored.read(tx);
    const index = entries.findIndex((entry) => entry.path === normalised);
    const mount = entries[index];
    if (mount === undefined) throw badRequest(`cannot tune "${normalised}": no mount at this path`);
    const version = input.options === undefined || input.options === null ? undefined : parseKvVersion(input.options);
    if (version !== undefined && version !== mount.options.version) {
      if (version === "1") throw badRequest(`cannot downgrade mount from version ${mount.options.version}`);
      throw badRequest(
        `cannot upgrade mount from version ${mount.options.version} to version ${version}: upgrading a KV version 1 mount in place is not supported by this server; mount a new KV version 2 engine and copy the secrets to it`,
      );
    }
    const updated: Mount = { ...mount };
    updated.description = tunedDescription(input.description, mount.description);
    entries[index] = updated;
    await this.stored.write(tx, entries);
    this.invalidate();
    return updated;
  }

  /**
   * Mounts `secret/` (KV version 2) when the table has never been written: on a fresh install
   * and in dev mode. A table that exists, even empty because every mount was disabled, is left
   * alone. Runs its own transaction; returns whether it mounted.
   */
  async ensureDefault(): Promise<boolean> {
    const created = await this.#storage.transaction((tx) => this.ensureDefaultIn(tx));
    this.invalidate();
    return created;
  }

  /**
   * {@link ensureDefault} inside the caller's transaction `tx` (the initialisation's, so the
   * default mount commits with the installation or not at all). Returns whether it mounted;
   * call {@link invalidate} again once `tx` has committed.
   */
  async ensureDefaultIn(tx: Transaction): Promise<boolean> {
    if ((await tx.get(MOUNT_TABLE_KEY)) !== null) return false;
    await this.enable(tx, DEFAULT_MOUNT_PATH, { type: "kv", options: { version: "2" }, description: DEFAULT_MOUNT_DESCRIPTION });
    return true;
  }
}

/** The table form of `path` ({@link mountPath}), checked to be mountable and not reserved; a 400 otherwise. */
export function validateMountPath(path: string): string {
  const normalised = parseMountPath(path);
  assertNotReserved(normalised, "mount");
  return normalised;
}

function assertNotReserved(path: string, verb: "mount" | "unmount"): void {
  if (RESERVED_MOUNT_PREFIXES.some((prefix) => path.startsWith(prefix))) {
    throw badRequest(`cannot ${verb} ${JSON.stringify(path)}: ${RESERVED_MOUNT_PREFIXES.join(", ")} are reserved`);
  }
}

const UNSUPPORTED_HINT =
  'Egide supports only the KV secrets engine, version 1 or version 2: type "kv" (version 1 unless options {"version": "2"}), "kv-v1" or "kv-v2"';

/** The type aliases that fix the KV version (Vault's `kv-v1` and `kv-v2`). */
const VERSIONED_TYPES: Readonly<Record<string, KvVersion>> = { "kv-v1": "1", "kv-v2": "2" };

function parseMountInput(input: MountInput): { version: KvVersion; description: string; local: boolean; sealWrap: boolean } {
  const type = input.type;
  if (typeof type !== "string" || type === "") throw badRequest("backend type must be specified as a string");
  const requested = parseKvVersion(input.options);
  let version: KvVersion;
  if (type === "kv") {
    // Vault: a `kv` mount without a version is version 1.
    version = requested ?? "1";
  } else if (Object.hasOwn(VERSIONED_TYPES, type)) {
    version = VERSIONED_TYPES[type] as KvVersion;
    if (requested !== undefined && requested !== version) {
      throw badRequest(
        `unsupported: type ${JSON.stringify(type)} is KV version ${version}, but options.version asks for version ${requested}. ${UNSUPPORTED_HINT}`,
      );
    }
  } else {
    throw badRequest(`unsupported secrets engine type ${JSON.stringify(type)}: ${UNSUPPORTED_HINT}`);
  }
  const description = entryDescription(input.description);
  return { version, description, local: input.local === true, sealWrap: input.seal_wrap === true };
}

/**
 * The KV version mount options ask for: undefined when they name none (absent, or ""), "1" or
 * "2" (a string or a number, as Vault's options map reads it); a 400 for anything else.
 */
function parseKvVersion(options: unknown): KvVersion | undefined {
  if (options !== undefined && options !== null && (typeof options !== "object" || Array.isArray(options))) {
    throw badRequest("options must be a map of strings");
  }
  const raw = options === undefined || options === null ? undefined : (options as Record<string, unknown>).version;
  if (raw === undefined || raw === null || raw === "") return undefined;
  const version = typeof raw === "string" || typeof raw === "number" ? String(raw) : "";
  if (version === "1" || version === "2") return version;
  throw badRequest(`unsupported: invalid version provided: ${JSON.stringify(raw)}. ${UNSUPPORTED_HINT}`);
}

/** Vault's 400 for reading the configuration of a path where nothing is mounted. */
export function noMountAt(path: string): VaultError {
  return badRequest(`No secret engine mount at ${mountPath(path)}`);
}
