import type { FastifyRequest } from "fastify";
import { vaultResponse } from "../http/vault-response.js";

/**
 * A mount entry as Vault's `GET /v1/sys/mounts` and `GET /v1/sys/auth` describe it: a secrets
 * engine or an auth method, with the `config` and `options` shapes of its table.
 */
export interface MountEntryInfo<Config, Options> {
  accessor: string;
  config: Config;
  deprecation_status: "supported";
  description: string;
  external_entropy_access: boolean;
  local: boolean;
  options: Options;
  plugin_version: string;
  running_plugin_version: string;
  running_sha256: string;
  seal_wrap: boolean;
  type: string;
  uuid: string;
}

/** What a mount table stores of an entry that its description shows. */
export interface MountEntryFields {
  accessor: string;
  description: string;
  local: boolean;
  seal_wrap: boolean;
  type: string;
  uuid: string;
}

/** What differs between the tables in a description: the config and options, and the built-in plugin's version. */
export interface MountEntryShape<Config, Options> {
  config: Config;
  options: Options;
  runningPluginVersion: string;
}

/** The Vault description of `entry` (keys in Vault's order, which is alphabetical). */
export function mountEntryInfo<Config, Options>(
  entry: MountEntryFields,
  shape: MountEntryShape<Config, Options>,
): MountEntryInfo<Config, Options> {
  return {
    accessor: entry.accessor,
    config: shape.config,
    deprecation_status: "supported",
    description: entry.description,
    external_entropy_access: false,
    local: entry.local,
    options: shape.options,
    plugin_version: "",
    running_plugin_version: shape.runningPluginVersion,
    running_sha256: "",
    seal_wrap: entry.seal_wrap,
    type: entry.type,
    uuid: entry.uuid,
  };
}

/**
 * The answer to a listing of mount entries (`GET sys/mounts`, `GET sys/auth`): the entries by
 * path in `data` and, as Vault also does for older clients, at the top level of the body.
 */
export function mountListing<T>(request: FastifyRequest, data: Record<string, T>): Record<string, unknown> {
  return { ...data, ...vaultResponse(request, data) };
}

/** The `data` of a `GET sys/mounts/:path/tune` or `GET sys/auth/:path/tune` answer (TTLs in seconds). */
export interface MountTuneInfo<Options> {
  default_lease_ttl: number;
  description: string;
  force_no_cache: false;
  max_lease_ttl: number;
  options: Options;
}

/** The tune view of a mount entry. */
export function mountTuneInfo<Options>(description: string, defaultTtl: number, maxTtl: number, options: Options): MountTuneInfo<Options> {
  return { default_lease_ttl: defaultTtl, description, force_no_cache: false, max_lease_ttl: maxTtl, options };
}
