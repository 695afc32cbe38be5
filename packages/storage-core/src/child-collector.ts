import { compareKeys, prefixSuccessor } from "./key-order.js";

/**
 * Turns keys read in order into Vault's list entries: each key stands for its next segment
 * under the prefix (with a trailing `/` when deeper), the rest of a folder's keys are skipped,
 * the prefix itself is not its own child, and entries up to `after` are left out. Both the
 * skip-scan in JavaScript and a backend's own server-side walk feed their keys through it, so
 * every listing follows the same rules.
 */
export class ChildCollector {
  /** The entries so far, in order. */
  readonly entries: string[] = [];
  #folderEnd: string | null = null;

  /**
   * @param prefix the listed prefix
   * @param after only entries strictly after this one ("" for all)
   * @param limit at most this many entries; `<= 0` for all
   */
  constructor(
    readonly prefix: string,
    readonly after: string,
    readonly limit: number,
  ) {}

  /** Whether the listing has `limit` entries. */
  get full(): boolean {
    return this.limit > 0 && this.entries.length >= this.limit;
  }

  /**
   * Where the folder of the last key taken ends (`prefixSuccessor(prefix + "folder/")`), or
   * null when that key was a leaf: the next key worth reading is at or after it.
   */
  get folderEnd(): string | null {
    return this.#folderEnd;
  }

  /** Takes the next key (keys come in byte order); returns false once the listing is full. */
  add(key: string): boolean {
    if (this.#folderEnd !== null && compareKeys(key, this.#folderEnd) < 0) return !this.full;
    this.#folderEnd = null;
    const entry = childEntry(this.prefix, key);
    // A key equal to the prefix (list("fo") with a key "fo") is not its own child.
    if (entry === null) return !this.full;
    // An `after` inside a folder ("a/b") can land us in that folder, whose entry ("a/") sorts
    // before `after`: skip it.
    if (this.after === "" || compareKeys(entry, this.after) > 0) this.entries.push(entry);
    if (entry.endsWith("/")) this.#folderEnd = prefixSuccessor(this.prefix + entry);
    return !this.full;
  }
}

/**
 * The list entry that `key` (which starts with `prefix`) stands for: its next segment, with a
 * trailing `/` when more segments follow; null for the prefix itself, which is not its own child.
 */
export function childEntry(prefix: string, key: string): string | null {
  const rest = key.slice(prefix.length);
  if (rest === "") return null;
  const slash = rest.indexOf("/");
  return slash === -1 ? rest : rest.slice(0, slash + 1);
}
