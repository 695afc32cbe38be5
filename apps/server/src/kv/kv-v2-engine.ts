import { getValues } from "@egide/storage-core";
import type { Transaction } from "@egide/storage-core";
import { VaultError, badRequest, notFound } from "../http/vault-error.js";
import { DELETE_VERSION_AFTER_DISABLED, kvConfigResponse, parseKvConfig, type KvConfigRecord } from "./kv-config.js";
import { parseCustomMetadata, validateCustomMetadata } from "./kv-custom-metadata.js";
import {
  bodyObject,
  field,
  hasField,
  isJsonObject,
  parseBoolean,
  parseInteger,
  parseMap,
  parseNonNegativeInteger,
  parseVersionList,
  weakInteger,
  type JsonObject,
} from "./kv-input.js";
import {
  addVersion,
  isDeleted,
  keptVersions,
  keyMetadataView,
  newKeyMetadata,
  parseKeyMetadata,
  scheduledDeletion,
  versionMetadataView,
  versionRecord,
  type KeyMetadataRecord,
  type VersionRecord,
} from "./kv-metadata.js";
import { KvKeys, isValidFolderPath, isValidSecretPath } from "./kv-paths.js";
import { KvNotFoundError, missing, noContent, ok, type KvResponse } from "./kv-response.js";
import { parseDurationSeconds, vaultTimestamp } from "./kv-time.js";
import { mergePatch } from "./json-merge-patch.js";

/** What reads need: the storage itself (`ctx.storage`) or a transaction. */
export type KvReader = Pick<Transaction, "get" | "list">;
/**
 * What writes need: a transaction (so that what they read and write commits together); its
 * optional `getMany` and `putMany` batch a write's reads and writes into one round trip each.
 */
export type KvWriter = Pick<Transaction, "get" | "list" | "put" | "delete"> & Partial<Pick<Transaction, "getMany" | "putMany">>;

/** Options of {@link KvV2Engine}. */
export interface KvEngineOptions {
  /** The clock, in milliseconds since the epoch (tests move it). Default `Date.now`. */
  now?: () => number;
}

/** The message Vault answers a failed check-and-set with. */
export const CAS_MISMATCH = "check-and-set parameter did not match the current version";
/** The status of a failed check-and-set: 400, as Vault answers it (clients tell it apart by the message). */
export const CAS_MISMATCH_STATUS = 400;
/** The message of a write without `cas` where the key or the mount requires it. */
export const CAS_REQUIRED = "check-and-set parameter required for this call";
/** The warning of a metadata write that sets `cas_required` false under a mount that requires it. */
export const CAS_REQUIRED_IGNORED = '"cas_required" set to false, but is mandated by backend config. This value will be ignored.';

/**
 * The KV version 2 secrets engine of one mount, over the storage keys below `prefix`
 * (`logical/<uuid>/`): see {@link KvKeys} for the layout.
 *
 * Every operation takes the storage to use: reads take `ctx.storage` (or a transaction);
 * writes take the transaction of `ctx.mutate`, and read what they depend on (the key's
 * metadata, the mount's configuration) through it, so two writers of the same key are
 * serialized by the storage and a check-and-set cannot be won twice.
 *
 * Results are Vault-shaped ({@link KvResponse}: the status and the envelope's `data`);
 * failures are thrown as `VaultError`s with Vault's messages. Writes never answer 404: they
 * throw it (a `KvNotFoundError` when Vault's 404 has a body), so that a mutation that did
 * nothing does not commit an audit row saying it succeeded.
 */
export class KvV2Engine {
  readonly keys: KvKeys;
  readonly #now: () => number;

  constructor(prefix: string, options: KvEngineOptions = {}) {
    this.keys = new KvKeys(prefix);
    this.#now = options.now ?? Date.now;
  }

  // ---------------------------------------------------------------------------------------
  // data/

  /**
   * Whether `path` has a metadata record: Vault's existence check of `data/` and `metadata/`,
   * which decides between the `create` and `update` capabilities of a write.
   */
  async exists(store: KvReader, path: string): Promise<boolean> {
    if (!this.keys.fits(path)) return false;
    return (await store.get(this.keys.metadata(path))) !== null;
  }

  /**
   * `GET data/:path?version=n`: the version's data and metadata. 404 without a body when the
   * key or the version does not exist; 404 with `{data: null, metadata}` when the version is
   * deleted or destroyed.
   */
  async readData(store: KvReader, path: string, version?: unknown): Promise<KvResponse> {
    const requested = optionalInteger(version, "version");
    const found = await this.#findVersion(store, path, requested);
    if (found === null) return missing();
    const { meta, number, record } = found;
    const metadata = versionMetadataView(meta, number, record);
    if (isDeleted(record, this.#now()) || record.destroyed) return missing({ data: null, metadata });
    const data = await this.#readVersionData(store, path, number);
    return ok({ data, metadata });
  }

  /**
   * `GET subkeys/:path?version=n&depth=d`: the version's data with every leaf value replaced
   * by null (down to `depth` levels; 0 is no limit), and its metadata.
   */
  async readSubkeys(store: KvReader, path: string, version?: unknown, depth?: unknown): Promise<KvResponse> {
    const requested = optionalInteger(version, "version");
    const maxDepth = optionalInteger(depth, "depth");
    if (maxDepth < 0) throw badRequest(`error converting input ${JSON.stringify(depth)} for field "depth": must not be negative`);
    const found = await this.#findVersion(store, path, requested);
    if (found === null) return missing();
    const { meta, number, record } = found;
    const metadata = versionMetadataView(meta, number, record);
    if (isDeleted(record, this.#now()) || record.destroyed) return missing({ subkeys: null, metadata });
    const data = await this.#readVersionData(store, path, number);
    return ok({ subkeys: subkeys(data, maxDepth, 1), metadata });
  }

  /**
   * `POST|PUT data/:path` with `{"data": {...}, "options": {"cas": n}}`: writes a new version.
   * `cas` 0 writes only if the key has no version; another value only if it is the current
   * version (else 400 with {@link CAS_MISMATCH}). Without `cas` where the key or the mount requires it: 400. The oldest
   * versions beyond `max_versions` are removed.
   */
  async write(tx: KvWriter, path: string, data: unknown, options?: unknown): Promise<KvResponse> {
    this.#assertWritablePath(path);
    if (data === undefined || data === null) throw badRequest("no data provided");
    const secret = parseMap(data, "data");
    const writeOptions = optionalMap(options, "options");
    // The mount's configuration and the key's metadata in one read (one round trip with getMany).
    const [rawConfig, rawMeta] = await getValues(tx, [this.keys.config, this.keys.metadata(path)]);
    const config = parseKvConfig(rawConfig ?? null);
    const now = this.#now();
    const meta = parseKeyMetadata(rawMeta ?? null) ?? newKeyMetadata(now);
    checkAndSet(writeOptions, config, meta);
    return this.#addVersion(tx, path, meta, config, secret, now);
  }

  /**
   * `PATCH data/:path` (JSON merge patch): applies `data` as an RFC 7386 merge patch to the
   * current version (null members remove keys) and writes the result as a new version, with
   * the same check-and-set rules as a write. 404 when the key has no current version; 404
   * with the version's metadata when it is deleted or destroyed.
   */
  async patch(tx: KvWriter, path: string, data: unknown, options?: unknown): Promise<KvResponse> {
    if (data === undefined || data === null) throw badRequest("no data provided");
    const patch = parseMap(data, "data");
    const patchOptions = optionalMap(options, "options");
    if (!this.keys.fits(path)) throw notFound();
    const meta = await this.#meta(tx, path);
    if (meta === null) throw notFound();
    const config = await this.#config(tx);
    checkAndSet(patchOptions, config, meta);
    const current = meta.current_version;
    const record = versionRecord(meta, current);
    if (record === undefined) throw notFound();
    const now = this.#now();
    if (isDeleted(record, now) || record.destroyed) throw new KvNotFoundError(versionMetadataView(meta, current, record));
    const existing = await this.#readVersionData(tx, path, current);
    const patched = mergePatch(existing, patch) as JsonObject;
    return this.#addVersion(tx, path, meta, config, patched, now);
  }

  /** `DELETE data/:path`: soft-deletes the current version (undone by `undelete`). 204. */
  async deleteLatest(tx: KvWriter, path: string): Promise<KvResponse> {
    if (!this.keys.fits(path)) return noContent();
    const meta = await this.#meta(tx, path);
    if (meta === null) return noContent();
    const record = versionRecord(meta, meta.current_version);
    const now = this.#now();
    if (record === undefined || record.destroyed || isDeleted(record, now)) return noContent();
    record.deletion_time = vaultTimestamp(now);
    await this.#putMeta(tx, path, meta);
    return noContent();
  }

  /** `POST delete/:path` with `{"versions": [...]}`: soft-deletes those versions. 204. */
  async deleteVersions(tx: KvWriter, path: string, versions: unknown): Promise<KvResponse> {
    const numbers = parseVersionList(versions);
    if (numbers.length === 0) throw badRequest("No version number provided");
    if (!this.keys.fits(path)) return noContent();
    const meta = await this.#meta(tx, path);
    if (meta === null) return noContent();
    const now = this.#now();
    for (const number of numbers) {
      const record = versionRecord(meta, number);
      if (record === undefined || record.destroyed || isDeleted(record, now)) continue;
      record.deletion_time = vaultTimestamp(now);
    }
    await this.#putMeta(tx, path, meta);
    return noContent();
  }

  /**
   * `POST undelete/:path` with `{"versions": [...]}`: restores soft-deleted versions (a
   * destroyed version stays destroyed). A `delete_version_after` in force schedules their
   * deletion again from now. 204.
   */
  async undeleteVersions(tx: KvWriter, path: string, versions: unknown): Promise<KvResponse> {
    const numbers = parseVersionList(versions);
    if (numbers.length === 0) throw badRequest("No version number provided");
    if (!this.keys.fits(path)) return noContent();
    const config = await this.#config(tx);
    const meta = await this.#meta(tx, path);
    if (meta === null) return noContent();
    const now = this.#now();
    for (const number of numbers) {
      const record = versionRecord(meta, number);
      if (record === undefined || record.destroyed) continue;
      const deletion = scheduledDeletion(now, config, meta);
      record.deletion_time = deletion === null ? "" : vaultTimestamp(deletion);
    }
    await this.#putMeta(tx, path, meta);
    return noContent();
  }

  /**
   * `PUT destroy/:path` with `{"versions": [...]}`: permanently removes those versions' data;
   * their metadata stays, marked `destroyed`. 204.
   */
  async destroyVersions(tx: KvWriter, path: string, versions: unknown): Promise<KvResponse> {
    const numbers = parseVersionList(versions);
    if (numbers.length === 0) throw badRequest("no version number provided");
    if (!this.keys.fits(path)) return noContent();
    const meta = await this.#meta(tx, path);
    if (meta === null) return noContent();
    const destroyed: number[] = [];
    for (const number of numbers) {
      const record = versionRecord(meta, number);
      if (record === undefined) continue;
      if (!record.destroyed) record.destroyed = true;
      destroyed.push(number);
    }
    await this.#putMeta(tx, path, meta);
    for (const number of destroyed) await tx.delete(this.keys.version(path, number));
    return noContent();
  }

  // ---------------------------------------------------------------------------------------
  // metadata/

  /** `GET metadata/:path`: the key's metadata and the state of every kept version; 404 if none. */
  async readMetadata(store: KvReader, path: string): Promise<KvResponse> {
    if (!this.keys.fits(path)) return missing();
    const meta = await this.#meta(store, path);
    return meta === null ? missing() : ok(keyMetadataView(meta));
  }

  /**
   * `LIST metadata/:folder` (or `GET ?list=true`): the keys and folders (with a trailing `/`)
   * directly below `folder`; 404 when there are none. `folder` is "" (the root) or ends with `/`.
   */
  async listMetadata(store: KvReader, folder: string): Promise<KvResponse> {
    const prefix = folder === "" || folder.endsWith("/") ? folder : `${folder}/`;
    if (!isValidFolderPath(prefix)) return missing();
    if (prefix !== "" && !this.keys.fits(prefix.slice(0, -1))) return missing();
    const keys = await store.list(this.keys.metadataFolder(prefix));
    return keys.length === 0 ? missing() : ok({ keys });
  }

  /**
   * `POST metadata/:path`: sets `max_versions`, `cas_required`, `delete_version_after` and
   * `custom_metadata` (replaced whole) of a key, creating its metadata if needed. 204, or 200
   * with a warning when `cas_required` false is overridden by the mount configuration.
   */
  async writeMetadata(tx: KvWriter, path: string, body: unknown): Promise<KvResponse> {
    if (path === "") throw badRequest("missing path");
    this.#assertWritablePath(path);
    const input = bodyObject(body);
    const maxVersions = provided(input, "max_versions") ? parseNonNegativeInteger(field(input, "max_versions"), "max_versions") : undefined;
    const casRequired = provided(input, "cas_required") ? parseBoolean(field(input, "cas_required"), "cas_required") : undefined;
    const deleteVersionAfter = provided(input, "delete_version_after")
      ? parseDurationSeconds(field(input, "delete_version_after"), "delete_version_after")
      : undefined;
    let customMetadata: Record<string, string> | undefined;
    if (provided(input, "custom_metadata")) {
      customMetadata = parseCustomMetadata(field(input, "custom_metadata"));
      validateCustomMetadata(customMetadata);
    }
    if (maxVersions === undefined && casRequired === undefined && deleteVersionAfter === undefined && customMetadata === undefined) {
      return noContent();
    }
    const config = await this.#config(tx);
    const warnings = casRequired === false && config.cas_required ? [CAS_REQUIRED_IGNORED] : [];
    const meta = (await this.#meta(tx, path)) ?? newKeyMetadata(this.#now());
    if (maxVersions !== undefined) meta.max_versions = maxVersions;
    if (casRequired !== undefined) meta.cas_required = casRequired;
    if (deleteVersionAfter !== undefined) meta.delete_version_after = deleteVersionAfter;
    if (customMetadata !== undefined) meta.custom_metadata = Object.keys(customMetadata).length > 0 ? customMetadata : null;
    await this.#putMeta(tx, path, meta);
    return warnings.length > 0 ? ok(null, warnings) : noContent();
  }

  /**
   * `PATCH metadata/:path` (JSON merge patch): changes only the fields given; a null field
   * resets it, and `custom_metadata` is merged (a null member removes that key). 404 when the
   * key has no metadata. 204, or 200 with the `cas_required` warning.
   */
  async patchMetadata(tx: KvWriter, path: string, body: unknown): Promise<KvResponse> {
    if (path === "") throw badRequest("missing path");
    const input = bodyObject(body);
    const maxVersions = hasField(input, "max_versions")
      ? nullOr(field(input, "max_versions"), 0, (v) => parseNonNegativeInteger(v, "max_versions"))
      : undefined;
    const casRequired = hasField(input, "cas_required")
      ? nullOr(field(input, "cas_required"), false, (v) => parseBoolean(v, "cas_required"))
      : undefined;
    const deleteVersionAfter = hasField(input, "delete_version_after")
      ? nullOr(field(input, "delete_version_after"), 0, (v) => parseDurationSeconds(v, "delete_version_after"))
      : undefined;
    const customPatch = hasField(input, "custom_metadata") ? field(input, "custom_metadata") : undefined;
    if (customPatch !== undefined && customPatch !== null) validateCustomMetadata(parseCustomMetadata(customPatch, true));
    if (!this.keys.fits(path)) throw notFound();
    const config = await this.#config(tx);
    const meta = await this.#meta(tx, path);
    if (meta === null) throw notFound();
    const warnings = casRequired === false && config.cas_required ? [CAS_REQUIRED_IGNORED] : [];
    if (maxVersions !== undefined) meta.max_versions = maxVersions;
    if (casRequired !== undefined) meta.cas_required = casRequired;
    if (deleteVersionAfter !== undefined) meta.delete_version_after = deleteVersionAfter;
    if (customPatch === null) {
      meta.custom_metadata = null;
    } else if (customPatch !== undefined) {
      const merged = parseCustomMetadata(mergePatch(meta.custom_metadata ?? {}, customPatch));
      validateCustomMetadata(merged);
      meta.custom_metadata = Object.keys(merged).length > 0 ? merged : null;
    }
    await this.#putMeta(tx, path, meta);
    return warnings.length > 0 ? ok(null, warnings) : noContent();
  }

  /** `DELETE metadata/:path`: removes every version's data and the metadata for good. 204. */
  async deleteMetadata(tx: KvWriter, path: string): Promise<KvResponse> {
    if (!this.keys.fits(path)) return noContent();
    const meta = await this.#meta(tx, path);
    if (meta === null) return noContent();
    for (const number of keptVersions(meta)) await tx.delete(this.keys.version(path, number));
    await tx.delete(this.keys.metadata(path));
    return noContent();
  }

  /**
   * The warnings a metadata write or patch of `body` will answer, from the mount
   * configuration in `store` (the route decides its status, 200 or 204, before the mutation).
   */
  async metadataWarnings(store: KvReader, body: unknown): Promise<string[]> {
    if (!isJsonObject(body) || !provided(body, "cas_required")) return [];
    let casRequired: boolean;
    try {
      casRequired = parseBoolean(field(body, "cas_required"), "cas_required");
    } catch {
      return [];
    }
    if (casRequired) return [];
    const config = await this.#config(store);
    return config.cas_required ? [CAS_REQUIRED_IGNORED] : [];
  }

  // ---------------------------------------------------------------------------------------
  // config

  /** `GET config`: `max_versions`, `cas_required` and `delete_version_after` of the mount. */
  async readConfig(store: KvReader): Promise<KvResponse> {
    return ok(kvConfigResponse(await this.#config(store)));
  }

  /**
   * `POST config`: sets the fields given. `delete_version_after` negative disables it for every
   * key, 0 clears it. 204.
   */
  async writeConfig(tx: KvWriter, body: unknown): Promise<KvResponse> {
    const input = bodyObject(body);
    const maxVersions = provided(input, "max_versions") ? parseNonNegativeInteger(field(input, "max_versions"), "max_versions") : undefined;
    const casRequired = provided(input, "cas_required") ? parseBoolean(field(input, "cas_required"), "cas_required") : undefined;
    const deleteVersionAfter = provided(input, "delete_version_after")
      ? parseDurationSeconds(field(input, "delete_version_after"), "delete_version_after", true)
      : undefined;
    if (maxVersions === undefined && casRequired === undefined && deleteVersionAfter === undefined) return noContent();
    const config = await this.#config(tx);
    if (maxVersions !== undefined) config.max_versions = maxVersions;
    if (casRequired !== undefined) config.cas_required = casRequired;
    if (deleteVersionAfter !== undefined)
      config.delete_version_after = deleteVersionAfter < 0 ? DELETE_VERSION_AFTER_DISABLED : deleteVersionAfter;
    await tx.put(this.keys.config, Buffer.from(JSON.stringify(config), "utf8"));
    return noContent();
  }

  // ---------------------------------------------------------------------------------------

  async #config(store: KvReader): Promise<KvConfigRecord> {
    return parseKvConfig(await store.get(this.keys.config));
  }

  async #meta(store: KvReader, path: string): Promise<KeyMetadataRecord | null> {
    return parseKeyMetadata(await store.get(this.keys.metadata(path)));
  }

  async #putMeta(tx: KvWriter, path: string, meta: KeyMetadataRecord): Promise<void> {
    await tx.put(this.keys.metadata(path), Buffer.from(JSON.stringify(meta), "utf8"));
  }

  async #findVersion(
    store: KvReader,
    path: string,
    requested: number,
  ): Promise<{ meta: KeyMetadataRecord; number: number; record: VersionRecord } | null> {
    if (!this.keys.fits(path)) return null;
    const meta = await this.#meta(store, path);
    if (meta === null) return null;
    const number = requested > 0 ? requested : meta.current_version;
    const record = versionRecord(meta, number);
    return record === undefined ? null : { meta, number, record };
  }

  async #readVersionData(store: KvReader, path: string, version: number): Promise<JsonObject> {
    const raw = await store.get(this.keys.version(path, version));
    // Vault answers this (metadata without its version's data) with a 500 too.
    if (raw === null) throw new Error(`kv: could not find version data (version ${version})`);
    return JSON.parse(raw.toString("utf8")) as JsonObject;
  }

  async #addVersion(
    tx: KvWriter,
    path: string,
    meta: KeyMetadataRecord,
    config: KvConfigRecord,
    data: JsonObject,
    now: number,
  ): Promise<KvResponse> {
    const versionKey = this.keys.version(path, meta.current_version + 1);
    const versionValue = Buffer.from(JSON.stringify(data), "utf8");
    const { version, record, trimmed } = addVersion(meta, now, scheduledDeletion(now, config, meta), config);
    const metaValue = Buffer.from(JSON.stringify(meta), "utf8");
    // The new version and the metadata naming it in one statement where the backend can.
    if (tx.putMany) {
      await tx.putMany([
        { key: versionKey, value: versionValue },
        { key: this.keys.metadata(path), value: metaValue },
      ]);
    } else {
      await tx.put(versionKey, versionValue);
      await tx.put(this.keys.metadata(path), metaValue);
    }
    for (const old of trimmed) await tx.delete(this.keys.version(path, old));
    return ok(versionMetadataView(meta, version, record));
  }

  #assertWritablePath(path: string): void {
    if (!isValidSecretPath(path)) {
      throw badRequest(
        `invalid secret path ${JSON.stringify(path)}: it must not be empty, start or end with "/", or contain empty, "." or ".." segments or control characters`,
      );
    }
    if (!this.keys.fits(path)) throw badRequest(`invalid secret path: longer than ${this.keys.maxPathBytes} bytes`);
  }
}

/**
 * Vault's check-and-set rule: with `cas`, the write goes ahead only if it equals the key's
 * current version (0: the key has no version yet); without it, only if neither the key nor
 * the mount requires it.
 */
function checkAndSet(options: JsonObject, config: KvConfigRecord, meta: KeyMetadataRecord): void {
  if (hasField(options, "cas")) {
    const cas = weakInteger(field(options, "cas"));
    if (cas === null) throw badRequest("error parsing check-and-set parameter");
    if (cas !== meta.current_version) throw new VaultError(CAS_MISMATCH_STATUS, CAS_MISMATCH);
  } else if (config.cas_required || meta.cas_required) {
    throw badRequest(CAS_REQUIRED);
  }
}

/** A field given with a value (Vault treats a null field as absent). */
function provided(input: JsonObject, name: string): boolean {
  return hasField(input, name) && field(input, name) !== null;
}

function nullOr<T>(value: unknown, fallback: T, parse: (value: unknown) => T): T {
  return value === null ? fallback : parse(value);
}

/** An optional integer parameter (query string or body): absent or "" is 0. */
function optionalInteger(value: unknown, name: string): number {
  if (value === undefined || value === null || value === "") return 0;
  return parseInteger(value, name);
}

/** An optional map parameter: absent or null is `{}`. */
function optionalMap(value: unknown, name: string): JsonObject {
  if (value === undefined || value === null) return {};
  return parseMap(value, name);
}

/** Vault's `subkeys`: leaves (and maps at `maxDepth`, and empty maps) become null. */
function subkeys(data: JsonObject, maxDepth: number, depth: number): JsonObject {
  const entries: Array<[string, unknown]> = [];
  for (const [name, value] of Object.entries(data)) {
    if (isJsonObject(value) && Object.keys(value).length > 0 && (maxDepth === 0 || depth < maxDepth)) {
      entries.push([name, subkeys(value, maxDepth, depth + 1)]);
    } else {
      entries.push([name, null]);
    }
  }
  return Object.fromEntries(entries);
}
