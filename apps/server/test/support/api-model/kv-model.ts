/**
 * A reference model of one KV version 2 key as Vault keeps it (vault-plugin-secrets-kv:
 * `KeyMetadata.AddVersion`, `pathDataWrite`, `pathDataDelete`, `pathUndeleteWrite`,
 * `pathDestroyWrite`, `pathMetadataWrite`, `pathMetadataDelete`), for exactly the operations the
 * model-based test generates. The mount's configuration is never changed by the test (max_versions
 * 0, cas_required false, no delete_version_after), so it is left out.
 */

/** The default number of versions a key keeps when neither the key nor the mount sets one. */
export const VAULT_DEFAULT_MAX_VERSIONS = 10;

/** One kept version. */
export interface ModelVersion {
  data: Record<string, unknown>;
  deleted: boolean;
  destroyed: boolean;
}

/** A key's metadata record (present once written, or once its metadata was written). */
export interface ModelKey {
  current: number;
  oldest: number;
  maxVersions: number;
  casRequired: boolean;
  versions: Map<number, ModelVersion>;
}

/** What a write is expected to answer. */
export type ModelWriteOutcome = { status: 200; version: number } | { status: 400; error: string };

/** What a data read is expected to answer. */
export type ModelReadOutcome =
  | { status: 404; metadata: null }
  | { status: 404; metadata: { version: number; deleted: boolean; destroyed: boolean } }
  | { status: 200; version: number; data: Record<string, unknown> };

const CAS_MISMATCH = "check-and-set parameter did not match the current version";
const CAS_REQUIRED = "check-and-set parameter required for this call";

/** A key with no version yet (what a metadata write creates). */
export function emptyKey(): ModelKey {
  return { current: 0, oldest: 0, maxVersions: 0, casRequired: false, versions: new Map() };
}

/**
 * `POST data/:path`: Vault's check-and-set rule, then `AddVersion` with its window of kept
 * versions (the larger of the key's and the mount's max_versions; 10 when neither is set).
 * Mutates `keys` only when the write succeeds.
 */
export function modelWrite(keys: Map<string, ModelKey>, path: string, data: Record<string, unknown>, cas?: number): ModelWriteOutcome {
  const existing = keys.get(path);
  const key = existing ?? emptyKey();
  if (cas !== undefined) {
    if (cas !== key.current) return { status: 400, error: CAS_MISMATCH };
  } else if (key.casRequired) {
    return { status: 400, error: CAS_REQUIRED };
  }
  key.current += 1;
  key.versions.set(key.current, { data, deleted: false, destroyed: false });
  const maxVersions = key.maxVersions > 0 ? key.maxVersions : VAULT_DEFAULT_MAX_VERSIONS;
  if (key.current - key.oldest >= maxVersions) {
    const lastToDelete = key.current - maxVersions;
    for (const number of [...key.versions.keys()]) if (number <= lastToDelete) key.versions.delete(number);
    key.oldest = lastToDelete + 1;
  }
  keys.set(path, key);
  return { status: 200, version: key.current };
}

/** `GET data/:path?version=n` (0: the current version). */
export function modelRead(keys: Map<string, ModelKey>, path: string, version: number): ModelReadOutcome {
  const key = keys.get(path);
  if (key === undefined) return { status: 404, metadata: null };
  const number = version > 0 ? version : key.current;
  const record = key.versions.get(number);
  if (record === undefined) return { status: 404, metadata: null };
  if (record.deleted || record.destroyed) {
    return { status: 404, metadata: { version: number, deleted: record.deleted, destroyed: record.destroyed } };
  }
  return { status: 200, version: number, data: record.data };
}

/** `DELETE data/:path`: soft-deletes the current version unless it is destroyed or deleted. */
export function modelDeleteLatest(keys: Map<string, ModelKey>, path: string): void {
  const key = keys.get(path);
  const record = key?.versions.get(key.current);
  if (record && !record.destroyed) record.deleted = true;
}

/** `POST delete/:path`: soft-deletes the versions given that are kept and not destroyed. */
export function modelDeleteVersions(keys: Map<string, ModelKey>, path: string, versions: number[]): void {
  const key = keys.get(path);
  for (const number of versions) {
    const record = key?.versions.get(number);
    if (record && !record.destroyed) record.deleted = true;
  }
}

/** `POST undelete/:path`: restores the versions given unless destroyed. */
export function modelUndelete(keys: Map<string, ModelKey>, path: string, versions: number[]): void {
  const key = keys.get(path);
  for (const number of versions) {
    const record = key?.versions.get(number);
    if (record && !record.destroyed) record.deleted = false;
  }
}

/** `PUT destroy/:path`: marks the versions given destroyed (their data is gone for good). */
export function modelDestroy(keys: Map<string, ModelKey>, path: string, versions: number[]): void {
  const key = keys.get(path);
  for (const number of versions) {
    const record = key?.versions.get(number);
    if (record) record.destroyed = true;
  }
}

/** `POST metadata/:path`: sets the fields given, creating the key's metadata when absent. */
export function modelWriteMetadata(keys: Map<string, ModelKey>, path: string, maxVersions?: number, casRequired?: boolean): void {
  if (maxVersions === undefined && casRequired === undefined) return;
  const key = keys.get(path) ?? emptyKey();
  if (maxVersions !== undefined) key.maxVersions = maxVersions;
  if (casRequired !== undefined) key.casRequired = casRequired;
  keys.set(path, key);
}

/** `DELETE metadata/:path`: the key and every version, gone. */
export function modelDeleteMetadata(keys: Map<string, ModelKey>, path: string): void {
  keys.delete(path);
}
