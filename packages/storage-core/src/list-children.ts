import { compareKeys, prefixSuccessor } from "./key-order.js";

/**
 * One index probe of a skip-scan: the smallest key that is `>= from` (or `> from` when
 * `inclusive` is false) and `< before` (no upper bound when `before` is null), or null.
 */
export interface KeySeek {
  from: string;
  inclusive: boolean;
  before: string | null;
}

/**
 * Vault's list as a skip-scan over an ordered key index, so listing costs one index probe per
 * child instead of a walk over the whole subtree.
 *
 * The generator yields {@link KeySeek}s and must be sent the key each one finds; it returns the
 * entries. Drivers run it synchronously (SQLite) or asynchronously (PostgreSQL) with
 * {@link runSkipScan} and {@link runSkipScanAsync}, so every backend lists by the same rules.
 *
 * @param prefix list the direct children of this prefix
 * @param after only entries strictly after this one in byte order ("" for all)
 * @param limit at most this many entries; `<= 0` for all
 */
export function* listChildren(prefix: string, after: string, limit: number): Generator<KeySeek, string[], string | null> {
  const before = prefixSuccessor(prefix);
  const entries: string[] = [];
  let seek: KeySeek;
  if (after === "") seek = { from: prefix, inclusive: true, before };
  // After a folder, resume past its whole subtree.
  else if (after.endsWith("/")) seek = { from: prefixSuccessor(prefix + after) as string, inclusive: true, before };
  else seek = { from: prefix + after, inclusive: false, before };

  while (limit <= 0 || entries.length < limit) {
    const key = yield seek;
    if (key === null) break;
    const rest = key.slice(prefix.length);
    if (rest === "") {
      // A key equal to the prefix (list("fo") with a key "fo") is not its own child.
      seek = { from: key, inclusive: false, before };
      continue;
    }
    const slash = rest.indexOf("/");
    const entry = slash === -1 ? rest : rest.slice(0, slash + 1);
    // An `after` inside a folder ("a/b") can land us in that folder, whose entry ("a/") sorts
    // before `after`: skip it.
    if (after === "" || compareKeys(entry, after) > 0) entries.push(entry);
    seek =
      slash === -1
        ? { from: key, inclusive: false, before }
        : { from: prefixSuccessor(prefix + entry) as string, inclusive: true, before };
  }
  return entries;
}

/** Runs {@link listChildren} with a synchronous index probe. */
export function runSkipScan(scan: Generator<KeySeek, string[], string | null>, seek: (probe: KeySeek) => string | null): string[] {
  let step = scan.next();
  while (!step.done) step = scan.next(seek(step.value));
  return step.value;
}

/** Runs {@link listChildren} with an asynchronous index probe. */
export async function runSkipScanAsync(
  scan: Generator<KeySeek, string[], string | null>,
  seek: (probe: KeySeek) => Promise<string | null>,
): Promise<string[]> {
  let step = scan.next();
  while (!step.done) step = scan.next(await seek(step.value));
  return step.value;
}
