/** What a mount lookup answers: the mount, and the rest of the path below it. */
export interface MountMatch<M> {
  mount: M;
  /** The path below the mount path (`data/app` for `secret/data/app` in `secret/`); "" for the mount itself. */
  rest: string;
}

/**
 * The entry of `mounts` that answers `path`: the longest mount path (with its trailing `/`)
 * that prefixes it, and the rest of the path below it (`secret/data/app` → `secret/`,
 * `data/app`). A path naming the mount without its slash (`secret`) matches it, with an empty
 * rest. Null when no mount matches.
 */
export function longestPrefixMount<M extends { path: string }>(mounts: readonly M[], path: string): MountMatch<M> | null {
  let best: M | null = null;
  for (const mount of mounts) {
    if (path.startsWith(mount.path) || path === mount.path.slice(0, -1)) {
      if (best === null || mount.path.length > best.path.length) best = mount;
    }
  }
  if (best === null) return null;
  return { mount: best, rest: path.length >= best.path.length ? path.slice(best.path.length) : "" };
}
