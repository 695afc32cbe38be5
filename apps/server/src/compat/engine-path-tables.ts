import { APPROLE_BACKEND, type AppRoleKind } from "../auth-methods/approle/approle-backend.js";
import { USERPASS_BACKEND, type UserpassKind } from "../auth-methods/userpass/userpass-backend.js";
import type { PathTable } from "../engines/path-table.js";
import { KV_V1_PATHS } from "../kv/kv-v1-paths.js";
import { KV_V2_PATHS } from "../kv/kv-v2-paths.js";

/**
 * An engine's path table as the compatibility document reads it: which Vault family it
 * serves, and the Vault template of each kind of path it routes (below the mount).
 */
export interface EnginePathTable<Kind extends string = string> {
  /** The family's documentation page (`secret/kv/kv-v2`): its endpoints are the ones compared. */
  family: string;
  /** The mount as the family's endpoints spell it (`:secret-mount-path`, `auth/approle`). */
  mountPlaceholder: string;
  /** What each kind of path answers; only the methods are read, never the handlers. */
  table: PathTable<Kind, never>;
  /** The Vault template of `kind` below the mount (`data/:path`, `config`). */
  subPathOf(kind: Kind): string;
}

/** Types an entry of {@link ENGINE_PATH_TABLES} against its own table's kinds. */
function engineTable<Kind extends string>(entry: EnginePathTable<Kind>): EnginePathTable {
  return entry;
}

// The Vault template of each kind of path of the auth methods (see `appRoleRoute` and
// `userpassRoute`): a Record, so that a kind added to a method fails to compile until named here.
const APPROLE_SUB_PATHS: Readonly<Record<AppRoleKind, string>> = {
  login: "login",
  roles: "role",
  role: "role/:role_name",
  roleId: "role/:role_name/role-id",
  secretId: "role/:role_name/secret-id",
  secretIdLookup: "role/:role_name/secret-id/lookup",
  secretIdDestroy: "role/:role_name/secret-id/destroy",
  accessorLookup: "role/:role_name/secret-id-accessor/lookup",
  accessorDestroy: "role/:role_name/secret-id-accessor/destroy",
};

const USERPASS_SUB_PATHS: Readonly<Record<UserpassKind, string>> = {
  login: "login/:username",
  users: "users",
  user: "users/:username",
  password: "users/:username/password",
  policies: "users/:username/policies",
};

/**
 * Every engine path table the server dispatches to (secrets engines behind `/v1/*`, auth
 * methods behind `/v1/auth/*`): adding an engine's table here is all the compatibility
 * document needs to describe what that engine serves.
 */
export const ENGINE_PATH_TABLES: readonly EnginePathTable[] = [
  engineTable({
    family: "secret/kv/kv-v1",
    mountPlaceholder: ":secret-mount-path",
    table: KV_V1_PATHS,
    // Every path below a KV version 1 mount names a secret (or, listed, a folder).
    subPathOf: () => ":path",
  }),
  engineTable({
    family: "secret/kv/kv-v2",
    mountPlaceholder: ":secret-mount-path",
    table: KV_V2_PATHS,
    // See `kv/kv-paths.ts`: `config` exactly, every other kind is `<kind>/<path>`.
    subPathOf: (kind) => (kind === "config" ? "config" : `${kind}/:path`),
  }),
  engineTable({
    family: "auth/approle",
    mountPlaceholder: "auth/approle",
    table: APPROLE_BACKEND.paths,
    subPathOf: (kind) => APPROLE_SUB_PATHS[kind],
  }),
  engineTable({
    family: "auth/userpass",
    mountPlaceholder: "auth/userpass",
    table: USERPASS_BACKEND.paths,
    subPathOf: (kind) => USERPASS_SUB_PATHS[kind],
  }),
];
