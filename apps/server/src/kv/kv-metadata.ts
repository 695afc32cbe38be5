import { DEFAULT_MAX_VERSIONS, type KvConfigRecord } from "./kv-config.js";
import { goDuration, parseVaultTimestamp, vaultTimestamp } from "./kv-time.js";

/** The state of one version, in a secret's metadata record. */
export interface VersionRecord {
  /** When the version was written (Vault's RFC 3339 format). */
  created_time: string;
  /** When the version was (or will be) soft-deleted; "" when it is not. */
  deletion_time: string;
  /** Whether its data was destroyed (permanently removed). */
  destroyed: boolean;
}

/**
 * A secret's metadata record (`<prefix>metadata/<path>`, JSON): the versions it still has and
 * its settings. Field names and meanings are Vault's `KeyMetadata`.
 */
export interface KeyMetadataRecord {
  /** The versions kept, by number. */
  versions: Record<string, VersionRecord>;
  /** The newest version (0 before the first write). */
  current_version: number;
  /** The oldest version kept, as Vault counts it (0 until the first trim). */
  oldest_version: number;
  /** Versions kept for this key (0: the mount's setting). */
  max_versions: number;
  /** Whether writes to this key need the `cas` option. */
  cas_required: boolean;
  /** Seconds before a new version of this key is deleted (0: not set). */
  delete_version_after: number;
  /** User-provided key-value pairs; null when there are none. */
  custom_metadata: Record<string, string> | null;
  created_time: string;
  updated_time: string;
}

/** The `metadata` part of a data read (and the `data` of a write) as Vault answers it. */
export interface VersionMetadataView {
  created_time: string;
  custom_metadata: Record<string, string> | null;
  deletion_time: string;
  destroyed: boolean;
  version: number;
}

/** A record for a key that has no version yet. */
export function newKeyMetadata(nowMs: number): KeyMetadataRecord {
  const now = vaultTimestamp(nowMs);
  return {
    versions: {},
    current_version: 0,
    oldest_version: 0,
    max_versions: 0,
    cas_required: false,
    delete_version_after: 0,
    custom_metadata: null,
    created_time: now,
    updated_time: now,
  };
}

/** Reads a stored metadata record, or null when there is none. */
export function parseKeyMetadata(raw: Buffer | null): KeyMetadataRecord | null {
  if (raw === null) return null;
  const parsed = JSON.parse(raw.toString("utf8")) as KeyMetadataRecord;
  return {
    versions: parsed.versions ?? {},
    current_version: parsed.current_version ?? 0,
    oldest_version: parsed.oldest_version ?? 0,
    max_versions: parsed.max_versions ?? 0,
    cas_required: parsed.cas_required === true,
    delete_version_after: parsed.delete_version_after ?? 0,
    custom_metadata: parsed.custom_metadata && Object.keys(parsed.custom_metadata).length > 0 ? parsed.custom_metadata : null,
    created_time: parsed.created_time ?? "",
    updated_time: parsed.updated_time ?? "",
  };
}

/** The record of version `version`, or undefined when the key does not keep it. */
export function versionRecord(meta: KeyMetadataRecord, version: number): VersionRecord | undefined {
  return Object.hasOwn(meta.versions, String(version)) ? meta.versions[String(version)] : undefined;
}

/** The version numbers the key keeps, ascending. */
export function keptVersions(meta: KeyMetadataRecord): number[] {
  return Object.keys(meta.versions)
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * Whether the version is deleted at `nowMs`: its deletion time is set and has come. (Vault
 * says "before now" with nanosecond clocks; with milliseconds, a deletion in the current
 * millisecond must count already, or a read right after a delete would still see the data.)
 */
export function isDeleted(version: VersionRecord, nowMs: number): boolean {
  const at = parseVaultTimestamp(version.deletion_time);
  return at !== null && at <= nowMs;
}

/** The version's metadata as a read or write answers it. */
export function versionMetadataView(meta: KeyMetadataRecord, version: number, record: VersionRecord): VersionMetadataView {
  return {
    created_time: record.created_time,
    custom_metadata: meta.custom_metadata,
    deletion_time: record.deletion_time,
    destroyed: record.destroyed,
    version,
  };
}

/** The `data` of `GET <mount>/metadata/<path>`, as Vault answers it. */
export function keyMetadataView(meta: KeyMetadataRecord): Record<string, unknown> {
  const versions: Record<string, VersionRecord> = {};
  for (const version of keptVersions(meta)) {
    const record = versionRecord(meta, version) as VersionRecord;
    versions[String(version)] = { created_time: record.created_time, deletion_time: record.deletion_time, destroyed: record.destroyed };
  }
  return {
    cas_required: meta.cas_required,
    created_time: meta.created_time,
    current_version: meta.current_version,
    custom_metadata: meta.custom_metadata,
    delete_version_after: goDuration(meta.delete_version_after),
    max_versions: meta.max_versions,
    oldest_version: meta.oldest_version,
    updated_time: meta.updated_time,
    versions,
  };
}

/**
 * When a version created at `createdMs` is to be deleted, as Vault decides it: the smaller of
 * the non-zero `delete_version_after` of the mount and of the key after creation, never when
 * both are unset, and never when the mount disabled it (negative).
 */
export function scheduledDeletion(createdMs: number, config: KvConfigRecord, meta: KeyMetadataRecord): number | null {
  if (config.delete_version_after < 0) return null;
  const mount = config.delete_version_after;
  const key = meta.delete_version_after;
  if (mount === 0 && key === 0) return null;
  let seconds = key;
  if ((mount !== 0 && mount < seconds) || seconds === 0) seconds = mount;
  return createdMs + seconds * 1000;
}

/** How many versions a key keeps: Vault takes the larger of the key's and the mount's setting, 10 when neither is set. */
export function effectiveMaxVersions(meta: KeyMetadataRecord, config: KvConfigRecord): number {
  const max = Math.max(meta.max_versions, config.max_versions);
  return max > 0 ? max : DEFAULT_MAX_VERSIONS;
}

/**
 * Adds a new current version to `meta` (in place) and moves the window of kept versions the
 * way Vault's `AddVersion` does. Returns the new version's number and the versions that fell
 * out of the window, whose data the caller deletes.
 */
export function addVersion(
  meta: KeyMetadataRecord,
  createdMs: number,
  deletionMs: number | null,
  config: KvConfigRecord,
): { version: number; record: VersionRecord; trimmed: number[] } {
  const record: VersionRecord = {
    created_time: vaultTimestamp(createdMs),
    deletion_time: deletionMs === null ? "" : vaultTimestamp(deletionMs),
    destroyed: false,
  };
  meta.current_version += 1;
  const version = meta.current_version;
  meta.versions[String(version)] = record;
  meta.updated_time = record.created_time;
  if (meta.created_time === "") meta.created_time = record.created_time;

  const maxVersions = effectiveMaxVersions(meta, config);
  const trimmed: number[] = [];
  if (meta.current_version - meta.oldest_version >= maxVersions) {
    const lastToDelete = meta.current_version - maxVersions;
    for (const kept of keptVersions(meta)) {
      if (kept > lastToDelete) break;
      delete meta.versions[String(kept)];
      trimmed.push(kept);
    }
    meta.oldest_version = lastToDelete + 1;
  }
  return { version, record, trimmed };
}
