import { readFileSync } from "node:fs";
import { usageError } from "../cli-error.js";

/** Vault's (and so Egide's) default address. */
export const DEFAULT_ADDRESS = "http://127.0.0.1:8200";

/** How to reach and authenticate to a server. */
export interface ConnectionOptions {
  /** The server's base URL, without a trailing slash (`http://127.0.0.1:8200`). */
  address: string;
  /** The token sent as `X-Vault-Token`, if any. */
  token?: string;
  /** PEM certificates to trust for HTTPS instead of the system's (`--ca-cert`). */
  ca?: Buffer;
}

/** The connection flags as commander parsed them. */
export interface ConnectionFlags {
  address?: string;
  token?: string;
  caCert?: string;
}

/** The first variable of `names` that is set and not empty. */
function fromEnv(env: Readonly<Record<string, string | undefined>>, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== "") return value;
  }
  return undefined;
}

/**
 * Resolves the connection: each flag wins over `EGIDE_*`, which wins over Vault's `VAULT_*`
 * (so existing Vault setups work unchanged); the address defaults to {@link DEFAULT_ADDRESS}.
 * A malformed address or an unreadable CA file is a usage error.
 */
export function resolveConnectionOptions(flags: ConnectionFlags, env: Readonly<Record<string, string | undefined>>): ConnectionOptions {
  const address = flags.address ?? fromEnv(env, "EGIDE_ADDR", "VAULT_ADDR") ?? DEFAULT_ADDRESS;
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw usageError(`invalid server address ${JSON.stringify(address)}: use http://HOST:PORT or https://HOST:PORT`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw usageError(`invalid server address ${JSON.stringify(address)}: use http://HOST:PORT or https://HOST:PORT`);
  }
  const token = flags.token ?? fromEnv(env, "EGIDE_TOKEN", "VAULT_TOKEN");
  const caFile = flags.caCert ?? fromEnv(env, "EGIDE_CACERT", "VAULT_CACERT");
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile);
    } catch (error) {
      throw usageError(`cannot read the CA certificate ${caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  return {
    address: `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`,
    ...(token === undefined ? {} : { token }),
    ...(ca === undefined ? {} : { ca }),
  };
}
