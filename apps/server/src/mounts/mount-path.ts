import { checkCanonicalPath } from "../http/canonical-path.js";
import { badRequest } from "../http/vault-error.js";

/** The longest mount path accepted, in UTF-8 bytes. */
export const MAX_MOUNT_PATH_BYTES = 256;

/**
 * The mount path a canonical request path names, as a mount table keys it: with a trailing `/`
 * (`team` → `team/`). Nothing is trimmed or stripped: the request pipeline refused
 * non-canonical spellings (surrounding spaces, empty segments) before the request was
 * authorised, so the table acts on exactly the path that was checked.
 */
export function mountPath(path: string): string {
  return path.endsWith("/") ? path : `${path}/`;
}

/**
 * The table form of `path` ({@link mountPath}), checked to be a path something may be mounted
 * at: not empty, canonical, at most {@link MAX_MOUNT_PATH_BYTES} bytes; a 400 otherwise. Each
 * table adds its own reserved paths.
 */
export function parseMountPath(path: string): string {
  const normalised = mountPath(path);
  if (normalised === "/") throw badRequest("a mount path is required");
  if (checkCanonicalPath(normalised) !== undefined) {
    throw badRequest(
      `invalid mount path ${JSON.stringify(normalised)}: empty, "." and ".." segments, control characters and surrounding spaces are not allowed`,
    );
  }
  if (Buffer.byteLength(normalised, "utf8") > MAX_MOUNT_PATH_BYTES) throw badRequest("invalid mount path: longer than 256 bytes");
  return normalised;
}

/**
 * The first of `entries` whose path overlaps the table form `path` either way (one is a prefix
 * of the other), or undefined: two such mounts would compete for the same requests.
 */
export function overlappingMount<M extends { path: string }>(entries: readonly M[], path: string): M | undefined {
  return entries.find((entry) => entry.path.startsWith(path) || path.startsWith(entry.path));
}
