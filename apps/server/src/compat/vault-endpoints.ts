import { VAULT_AUTH_FAMILIES } from "./vault-auth-endpoints.js";
import type { EgideExtension, VaultFamily } from "./vault-endpoint-types.js";
import { VAULT_SECRET_FAMILIES } from "./vault-secret-endpoints.js";
import { VAULT_SYSTEM_FAMILIES } from "./vault-system-endpoints.js";

/** Vault's HTTP API, one family per page of its API documentation: system, auth methods, secrets engines. */
export const VAULT_FAMILIES: readonly VaultFamily[] = [...VAULT_SYSTEM_FAMILIES, ...VAULT_AUTH_FAMILIES, ...VAULT_SECRET_FAMILIES];

/**
 * The routes Egide serves that Vault has not. A declared route must be one of Vault's
 * endpoints, one of these, or a dispatcher: the compatibility check fails on any other, so
 * that a new route is classified when it is added.
 */
export const EGIDE_EXTENSIONS: readonly EgideExtension[] = [
  {
    template: "sys/audit-log",
    description: "Reads the audit rows, filtered by time, path prefix, request, operation or outcome (`read` and `sudo`).",
  },
  {
    template: "sys/storage/backup",
    description:
      "Streams an encrypted, authenticated backup of every record of the storage, as one point-in-time snapshot (`read` and `sudo`).",
  },
  {
    template: "sys/storage/restore",
    description: "Replaces the whole storage with a verified backup of the same installation, then seals (`update` and `sudo`).",
  },
];

/**
 * The templates of the catch-all routes that serve mounted secrets engines and auth methods
 * (`auth/<mount>/login` is the public login route of every auth method): they answer what the
 * path tables of `engine-path-tables.ts` declare, and are documented through them.
 */
export const DISPATCHER_TEMPLATES: readonly string[] = ["<mount>/*", "auth/<mount>/*", "auth/<mount>/login"];
