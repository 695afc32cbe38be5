import { badRequest } from "../http/vault-error.js";

/** How long a mount table read from storage is trusted before it is read again, ms. */
export const DEFAULT_MOUNT_TABLE_CACHE_MS = 1000;

/** How many children a purge lists per storage call when an entry's data is deleted. */
export const MOUNT_PURGE_BATCH = 500;

/** What every mount table entry holds, a secrets engine's or an auth method's. */
export interface MountEntry {
  /** The mount path: no leading `/`, always a trailing `/` (`secret/`, `team/kv/`). */
  path: string;
  description: string;
  /** Random, fixed for the entry's life; its data lives below `<data prefix><uuid>/`. */
  uuid: string;
  /** A prefix naming the kind of entry and 8 hex digits, as Vault names accessors. */
  accessor: string;
  local: boolean;
  seal_wrap: boolean;
  /** When it was mounted or enabled (RFC 3339). */
  created_time: string;
}

/** What every mount table's `enable` takes (from the request body). */
export interface MountEntryInput {
  type?: unknown;
  description?: unknown;
  local?: unknown;
  seal_wrap?: unknown;
}

/** The description of a new entry: "" when absent; a 400 when not a string. */
export function entryDescription(value: unknown): string {
  const description = value ?? "";
  if (typeof description !== "string") throw badRequest("description must be a string");
  return description;
}

/** The description of a tuned entry: `current` when `value` is absent or null; a 400 when not a string. */
export function tunedDescription(value: unknown, current: string): string {
  if (value === undefined || value === null) return current;
  if (typeof value !== "string") throw badRequest("description must be a string");
  return value;
}
