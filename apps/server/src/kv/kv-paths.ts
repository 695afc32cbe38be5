import { MAX_KEY_BYTES } from "@egide/storage-core";

/**
 * The endpoints of a KV version 2 mount, from the part of the Vault path after the mount
 * (`data/app/db` → `{ kind: "data", path: "app/db" }`), with Vault's patterns:
 *
 * - `config` exactly;
 * - `data/<path>` where the path is not empty and does not end with `/`;
 * - `metadata/<path>` where the path may be empty or end with `/` (for listing);
 * - `delete/<path>`, `undelete/<path>`, `destroy/<path>`, `subkeys/<path>`.
 *
 * Anything else is not a route of the engine (Vault's "unsupported path").
 */
export type KvRoute = { kind: "config" } | { kind: "data" | "metadata" | "delete" | "undelete" | "destroy" | "subkeys"; path: string };

const PATH_ROUTES = ["data", "metadata", "delete", "undelete", "destroy", "subkeys"] as const;

/** The engine route of `rest` (the path below the mount), or null when there is none. */
export function parseKvRoute(rest: string): KvRoute | null {
  if (rest === "config") return { kind: "config" };
  const slash = rest.indexOf("/");
  if (slash < 0) return null;
  const head = rest.slice(0, slash);
  const path = rest.slice(slash + 1);
  const kind = PATH_ROUTES.find((name) => name === head);
  if (kind === undefined) return null;
  if (kind === "data" && (path === "" || path.endsWith("/"))) return null;
  return { kind, path };
}

// C0 and C1 controls and DEL: never part of a storage key.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejects control characters in paths on purpose
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Whether `path` can name a secret: not empty, no leading or trailing `/`, no empty, `.` or `..`
 * segment, no control characters. (The storage key rules, which every key derived from the
 * path must follow.)
 */
export function isValidSecretPath(path: string): boolean {
  if (path === "" || path.startsWith("/") || path.endsWith("/")) return false;
  if (CONTROL.test(path) || LONE_SURROGATE.test(path)) return false;
  return path.split("/").every((segment) => segment !== "" && segment !== "." && segment !== "..");
}

/** Whether `path` can be listed: empty (the root), or a valid secret path followed by `/`. */
export function isValidFolderPath(path: string): boolean {
  if (path === "") return true;
  return path.endsWith("/") && isValidSecretPath(path.slice(0, -1));
}

/** The longest version number a version key leaves room for (20 digits: any safe integer). */
const VERSION_DIGITS = 20;

/**
 * The storage keys of one KV mount, below its prefix (`logical/<uuid>/`):
 *
 * - `<prefix>config`: the engine configuration;
 * - `<prefix>metadata/<path>`: a secret's metadata record;
 * - `<prefix>versions/<path>/<n>`: the data of version `n`.
 */
export class KvKeys {
  readonly prefix: string;
  readonly config: string;
  readonly #metadata: string;
  readonly #versions: string;
  /** The longest secret path (in UTF-8 bytes) whose keys all fit the storage key limit. */
  readonly maxPathBytes: number;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.config = `${prefix}config`;
    this.#metadata = `${prefix}metadata/`;
    this.#versions = `${prefix}versions/`;
    this.maxPathBytes = MAX_KEY_BYTES - Buffer.byteLength(this.#versions, "utf8") - 1 - VERSION_DIGITS;
  }

  /** The metadata record of `path`. */
  metadata(path: string): string {
    return this.#metadata + path;
  }

  /** The listing prefix of the metadata folder `folder` ("" or ending with `/`). */
  metadataFolder(folder: string): string {
    return this.#metadata + folder;
  }

  /** The data of version `version` of `path`. */
  version(path: string, version: number): string {
    return `${this.#versions}${path}/${version}`;
  }

  /** Whether `path` is a valid secret path whose keys fit the storage key limit. */
  fits(path: string): boolean {
    return isValidSecretPath(path) && Buffer.byteLength(path, "utf8") <= this.maxPathBytes;
  }
}
