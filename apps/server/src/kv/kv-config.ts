import { goDuration } from "./kv-time.js";

/** Vault keeps this many versions of a key when neither the key nor the mount says otherwise. */
export const DEFAULT_MAX_VERSIONS = 10;

/** `delete_version_after` of a mount configuration that disabled it for every key. */
export const DELETE_VERSION_AFTER_DISABLED = -1;

/**
 * The engine configuration of a mount (`<prefix>config`, JSON), as `POST <mount>/config` sets
 * it. Zero values mean "not set".
 */
export interface KvConfigRecord {
  /** Versions kept per key (0: Vault's default of 10, unless the key sets its own). */
  max_versions: number;
  /** Whether every write needs the `cas` option. */
  cas_required: boolean;
  /** Seconds before a new version is deleted; 0: not set; -1: disabled for every key. */
  delete_version_after: number;
}

/** The configuration of a mount that was never configured. */
export function defaultKvConfig(): KvConfigRecord {
  return { max_versions: 0, cas_required: false, delete_version_after: 0 };
}

/** Reads a stored configuration record (missing fields take their defaults). */
export function parseKvConfig(raw: Buffer | null): KvConfigRecord {
  if (raw === null) return defaultKvConfig();
  const parsed = JSON.parse(raw.toString("utf8")) as Partial<KvConfigRecord>;
  return {
    max_versions: typeof parsed.max_versions === "number" ? parsed.max_versions : 0,
    cas_required: parsed.cas_required === true,
    delete_version_after: typeof parsed.delete_version_after === "number" ? parsed.delete_version_after : 0,
  };
}

/** The `data` of `GET <mount>/config`, as Vault answers it. */
export function kvConfigResponse(config: KvConfigRecord): { max_versions: number; cas_required: boolean; delete_version_after: string } {
  return {
    max_versions: config.max_versions,
    cas_required: config.cas_required,
    delete_version_after: goDuration(config.delete_version_after),
  };
}
