import { compareKeys } from "@egide/storage-core";

/**
 * Vault's list computed the obvious way: every key that starts with `prefix`, cut to its first
 * segment after the prefix (keeping the `/` of a folder), deduplicated and sorted in byte order.
 *
 * It shares no code with storage-core's skip-scan (`listChildren`), so comparing the two in the
 * differential test really checks the skip-scan. A key equal to the prefix is not its own child:
 * it would be an empty entry, which names nothing.
 */
export function naiveChildren(keys: Iterable<string>, prefix: string): string[] {
  const entries = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix) || key.length === prefix.length) continue;
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf("/");
    entries.add(slash === -1 ? rest : rest.slice(0, slash + 1));
  }
  return [...entries].sort(compareKeys);
}

/**
 * A page of a sorted listing: the entries strictly after `after` in byte order (all of them
 * when `after` is empty), at most `limit` of them (`limit <= 0`: no limit).
 */
export function naivePage(entries: readonly string[], after: string, limit: number): string[] {
  const rest = after === "" ? [...entries] : entries.filter((entry) => compareKeys(entry, after) > 0);
  return limit > 0 ? rest.slice(0, limit) : rest;
}
