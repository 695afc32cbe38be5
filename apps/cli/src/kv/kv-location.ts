import { CliError, usageError } from "../cli-error.js";
import { EgideApiError } from "../client/egide-api-error.js";
import { encodePath } from "../client/egide-client.js";
import type { EgideClient } from "../client/egide-client.js";

/** A key of a KV version 2 mount: `secret/app` is mount `secret/`, key `app`. */
export interface KvLocation {
  /** The mount path with its trailing slash (`secret/`). */
  mount: string;
  /** The key below the mount (`app`, `team/db`; empty for the mount's root). */
  key: string;
}

/** The API endpoints of a KV version 2 mount. */
export type KvEndpoint = "data" | "metadata" | "delete" | "undelete" | "destroy";

/** `mount/endpoint/key`, readable (`secret/data/app`), for messages. */
export function kvDisplayPath(location: KvLocation, endpoint: KvEndpoint): string {
  return `${location.mount}${endpoint}/${location.key}`;
}

/** `mount/endpoint/key`, encoded for a request. */
export function kvApiPath(location: KvLocation, endpoint: KvEndpoint): string {
  return encodePath(kvDisplayPath(location, endpoint));
}

/** The mount description `sys/internal/ui/mounts/<path>` answers. */
interface MountPreflight {
  data?: { path?: string; type?: string; options?: { version?: string } | null };
}

/**
 * Finds the mount of `path` as Vault's `vault kv` does: asks the server
 * (`GET /v1/sys/internal/ui/mounts/<path>`), which knows mounts with slashes in their names;
 * a server without that endpoint (404) is taken to have the first segment as the mount. With
 * `mount` given (`--mount secret`), `path` is the key below it. Refuses a mount that is not KV
 * version 2.
 */
export async function locateKv(client: EgideClient, path: string, mount?: string): Promise<KvLocation> {
  const full = mount === undefined ? trimSlashes(path) : `${trimSlashes(mount)}/${trimSlashes(path)}`;
  if (full === "") throw usageError("a path such as secret/app is required");
  let preflight: MountPreflight | null;
  try {
    preflight = (await client.get<MountPreflight>(`sys/internal/ui/mounts/${encodePath(full)}`)).body;
  } catch (error) {
    if (error instanceof EgideApiError && error.status === 404) return firstSegmentMount(full);
    throw error;
  }
  const mountPath = preflight?.data?.path;
  if (mountPath === undefined || mountPath === "") return firstSegmentMount(full);
  const normalised = mountPath.endsWith("/") ? mountPath : `${mountPath}/`;
  const version = preflight?.data?.options?.version;
  if (preflight?.data?.type !== undefined && preflight.data.type !== "kv")
    throw new CliError(`${normalised} is not a KV mount (type ${preflight.data.type})`);
  if (version !== undefined && version !== "2")
    throw new CliError(`${normalised} is a KV version ${version} mount; egide kv supports version 2 only`);
  const withSlash = `${full}/`;
  const key = withSlash.startsWith(normalised) ? full.slice(normalised.length) : full;
  return { mount: normalised, key };
}

function firstSegmentMount(full: string): KvLocation {
  const slash = full.indexOf("/");
  return slash < 0 ? { mount: `${full}/`, key: "" } : { mount: full.slice(0, slash + 1), key: full.slice(slash + 1) };
}

function trimSlashes(path: string): string {
  return path.replace(/^\/+/, "").replace(/\/+$/, "");
}

/** Refuses the mount's root where a key is needed (`kv get secret`). */
export function requireKey(location: KvLocation): KvLocation {
  if (location.key === "") throw usageError(`a key below the mount is required, such as ${location.mount}app`);
  return location;
}
