import { assertNotCreatedMeanwhile } from "../created-meanwhile.js";
import { randomUUID } from "node:crypto";
import { VaultError, badRequest, notFound } from "../../http/vault-error.js";
import { vaultResponse } from "../../http/vault-response.js";
import { field, hasField, parseBoolean, parseInteger } from "../../kv/kv-input.js";
import { answerData, answerKeys, answerNoContent } from "../auth-method-answer.js";
import type { AuthMethodBackend, AuthMethodCall, AuthMethodRoute } from "../auth-method-call.js";
import { MAX_SECRET_BYTES, boundedString, isValidName, parseSeconds, parseStringMap } from "../auth-method-input.js";
import { cidrsWithin, parseCidrList } from "../cidr-list.js";
import { createHmacKey } from "../secret-id-hash.js";
import { DEFAULT_TOKEN_SETTINGS, parseTokenSettings, tokenSettingsData } from "../token-settings.js";
import { appRoleLogin } from "./approle-login.js";
import { type AppRoleEntry, AppRoleStore, type SecretIdEntry } from "./approle-store.js";

/** The paths of an AppRole mount (Vault's `builtin/credential/approle`). */
export type AppRoleKind =
  | "login"
  | "roles"
  | "role"
  | "roleId"
  | "secretId"
  | "secretIdLookup"
  | "secretIdDestroy"
  | "accessorLookup"
  | "accessorDestroy";

// The paths below `role/<name>/`.
const ROLE_SUBPATHS: Readonly<Record<string, AppRoleKind>> = {
  "role-id": "roleId",
  "secret-id": "secretId",
  "secret-id/": "secretId",
  "secret-id/lookup": "secretIdLookup",
  "secret-id/destroy": "secretIdDestroy",
  "secret-id-accessor/lookup": "accessorLookup",
  "secret-id-accessor/destroy": "accessorDestroy",
};

/** Reads the path below an AppRole mount; null for a path AppRole does not have. */
export function appRoleRoute(rest: string): AuthMethodRoute<AppRoleKind> | null {
  if (rest === "login") return { kind: "login", name: "" };
  if (rest === "role" || rest === "role/") return { kind: "roles", name: "" };
  if (!rest.startsWith("role/")) return null;
  const below = rest.slice("role/".length);
  const slash = below.indexOf("/");
  const name = slash < 0 ? below : below.slice(0, slash);
  // A role name is checked here, before anything is read or hashed: it becomes a storage key.
  if (!isValidName(name, true)) return null;
  if (slash < 0) return { kind: "role", name };
  const kind = Object.hasOwn(ROLE_SUBPATHS, below.slice(slash + 1)) ? ROLE_SUBPATHS[below.slice(slash + 1)] : undefined;
  return kind === undefined ? null : { kind, name };
}

function roleDoesNotExist(name: string): VaultError {
  return badRequest(`role "${name}" does not exist`);
}

function roleData(role: AppRoleEntry): Record<string, unknown> {
  return {
    bind_secret_id: role.bind_secret_id,
    local_secret_ids: role.local_secret_ids,
    secret_id_bound_cidrs: role.secret_id_bound_cidrs,
    secret_id_num_uses: role.secret_id_num_uses,
    secret_id_ttl: role.secret_id_ttl,
    ...tokenSettingsData(role),
  };
}

// Go's zero time, which Vault answers for a secret id that never expires.
const ZERO_TIME = "0001-01-01T00:00:00Z";

function secretIdData(entry: SecretIdEntry): Record<string, unknown> {
  return {
    cidr_list: entry.cidr_list,
    creation_time: new Date(entry.created).toISOString(),
    expiration_time: entry.expires === null ? ZERO_TIME : new Date(entry.expires).toISOString(),
    last_updated_time: new Date(entry.updated).toISOString(),
    metadata: entry.metadata,
    secret_id_accessor: entry.accessor,
    secret_id_num_uses: entry.num_uses,
    secret_id_ttl: entry.ttl,
    token_bound_cidrs: [],
  };
}

/** Whether a secret id may still log in at `now`. */
export function secretIdLive(entry: SecretIdEntry, now: number): boolean {
  return entry.expires === null || entry.expires > now;
}

/** The role named by the call, read through `reader`; a 400 when it does not exist. */
async function existingRole(call: AuthMethodCall, store: AppRoleStore): Promise<AppRoleEntry> {
  const role = await store.role(call.storage, call.name);
  if (role === null) throw roleDoesNotExist(call.name);
  return role;
}

function secretIdField(call: AuthMethodCall): string {
  const value = field(call.body, "secret_id");
  if (value === undefined || value === null || value === "") throw badRequest("missing secret_id");
  return boundedString(value, "secret_id", MAX_SECRET_BYTES);
}

function accessorField(call: AuthMethodCall): string {
  const value = field(call.body, "secret_id_accessor");
  if (value === undefined || value === null || value === "") throw badRequest("missing secret_id_accessor");
  return boundedString(value, "secret_id_accessor", 128);
}

function missingAccessor(accessor: string): string {
  return `failed to find accessor entry for secret_id_accessor: ${JSON.stringify(accessor)}`;
}

/** Creates or updates a role (`POST auth/<mount>/role/:name`), in one transaction. */
async function writeRole(call: AuthMethodCall): Promise<unknown> {
  const store = new AppRoleStore(call.prefix);
  const body = call.body;
  const roleIdGiven = hasField(body, "role_id") ? boundedString(field(body, "role_id"), "role_id", MAX_SECRET_BYTES) : undefined;
  if (roleIdGiven === "") throw badRequest("role_id cannot be empty");
  await call.mutate(204, async (tx) => {
    const previous = await store.role(tx, call.name);
    assertNotCreatedMeanwhile(call, previous);
    const base: AppRoleEntry = previous ?? {
      ...DEFAULT_TOKEN_SETTINGS,
      token_policies: [],
      role_id: randomUUID(),
      bind_secret_id: true,
      secret_id_num_uses: 0,
      secret_id_ttl: 0,
      secret_id_bound_cidrs: [],
      local_secret_ids: false,
    };
    const role: AppRoleEntry = { ...base, ...parseTokenSettings(body, base) };
    if (roleIdGiven !== undefined) role.role_id = roleIdGiven;
    if (hasField(body, "bind_secret_id")) role.bind_secret_id = parseBoolean(field(body, "bind_secret_id"), "bind_secret_id");
    if (hasField(body, "secret_id_num_uses")) {
      role.secret_id_num_uses = parseInteger(field(body, "secret_id_num_uses"), "secret_id_num_uses");
      if (role.secret_id_num_uses < 0) throw badRequest("secret_id_num_uses cannot be negative");
    }
    if (hasField(body, "secret_id_ttl")) role.secret_id_ttl = parseSeconds(field(body, "secret_id_ttl"), "secret_id_ttl");
    const cidrField = hasField(body, "secret_id_bound_cidrs")
      ? "secret_id_bound_cidrs"
      : hasField(body, "bound_cidr_list")
        ? "bound_cidr_list"
        : null;
    if (cidrField !== null) role.secret_id_bound_cidrs = parseCidrList(field(body, cidrField), cidrField);
    if (hasField(body, "local_secret_ids")) {
      const local = parseBoolean(field(body, "local_secret_ids"), "local_secret_ids");
      if (previous !== null && local !== previous.local_secret_ids) {
        throw badRequest("local_secret_ids can only be modified during role creation");
      }
      role.local_secret_ids = local;
    }
    if (!role.bind_secret_id && role.secret_id_bound_cidrs.length === 0) {
      throw badRequest("at least one constraint should be enabled on the role");
    }
    if (!(await store.putRole(tx, call.name, role, previous))) throw badRequest("role_id already in use");
  });
  return answerNoContent(call);
}

/** Generates a secret id (`POST auth/<mount>/role/:name/secret-id`): returned once, stored only as its keyed hash. */
async function generateSecretId(call: AuthMethodCall): Promise<unknown> {
  const store = new AppRoleStore(call.prefix);
  const body = call.body;
  const cidrs = parseCidrList(field(body, "cidr_list"), "cidr_list");
  if (hasField(body, "token_bound_cidrs") && parseCidrList(field(body, "token_bound_cidrs"), "token_bound_cidrs").length > 0) {
    throw badRequest("token_bound_cidrs is not supported by this server: its tokens cannot be bound to client addresses");
  }
  const metadata = parseStringMap(field(body, "metadata"), "metadata");
  const numUsesGiven = hasField(body, "num_uses") ? parseInteger(field(body, "num_uses"), "num_uses") : undefined;
  const ttlGiven = hasField(body, "ttl") ? parseSeconds(field(body, "ttl"), "ttl") : undefined;
  // 122 random bits, Vault's format.
  const secretId = randomUUID();
  const stored = await call.mutate(200, async (tx) => {
    const role = await store.role(tx, call.name);
    if (role === null) throw roleDoesNotExist(call.name);
    if (!role.bind_secret_id) throw badRequest("bind_secret_id is not set on the role");
    if (!cidrsWithin(cidrs, role.secret_id_bound_cidrs)) {
      throw badRequest(
        "failed to verify the CIDR restrictions set on the secret ID: they must be a subset of the role's secret_id_bound_cidrs",
      );
    }
    let numUses = role.secret_id_num_uses;
    if (numUsesGiven !== undefined) {
      if (numUsesGiven < 0) throw badRequest("num_uses cannot be negative");
      if (role.secret_id_num_uses > 0 && (numUsesGiven === 0 || numUsesGiven > role.secret_id_num_uses)) {
        throw badRequest("num_uses cannot be higher than the role's secret_id_num_uses");
      }
      numUses = numUsesGiven;
    }
    let ttl = role.secret_id_ttl;
    if (ttlGiven !== undefined) {
      if (role.secret_id_ttl > 0 && (ttlGiven === 0 || ttlGiven > role.secret_id_ttl)) {
        throw badRequest("ttl cannot be longer than the role's secret_id_ttl");
      }
      ttl = ttlGiven;
    }
    // Fail closed: where Vault lets a TTL of 0 mean "never expires", a secret id here lives at
    // most the server's max_lease_ttl, as any token it could be exchanged for.
    const maxSeconds = Math.floor(call.limits.maxTtlMs / 1000);
    if (ttl === 0 || ttl > maxSeconds) ttl = maxSeconds;
    const now = Date.now();
    const hash = await store.secretIdHash(tx, secretId);
    return store.addSecretId(tx, call.name, hash, {
      created: now,
      updated: now,
      expires: now + ttl * 1000,
      num_uses: numUses,
      ttl,
      cidr_list: cidrs,
      metadata,
    });
  });
  return answerData(call, {
    secret_id: secretId,
    secret_id_accessor: stored.accessor,
    secret_id_num_uses: stored.num_uses,
    secret_id_ttl: stored.ttl,
  });
}

/** The AppRole auth method. */
export const APPROLE_BACKEND: AuthMethodBackend<AppRoleKind> = {
  route: appRoleRoute,
  isLogin: (kind) => kind === "login",
  async exists(reader, prefix, route) {
    if (route.kind !== "role") return true;
    return (await new AppRoleStore(prefix).role(reader, route.name)) !== null;
  },
  initialise: (tx, prefix) => createHmacKey(tx, prefix),
  paths: {
    login: { POST: appRoleLogin, PUT: appRoleLogin },
    roles: {
      LIST: async (call) => answerKeys(call, await new AppRoleStore(call.prefix).roleNames(call.storage)),
    },
    role: {
      GET: async (call) => {
        const role = await new AppRoleStore(call.prefix).role(call.storage, call.name);
        if (role === null) throw notFound();
        return answerData(call, roleData(role));
      },
      POST: writeRole,
      PUT: writeRole,
      DELETE: async (call) => {
        const store = new AppRoleStore(call.prefix);
        await call.mutate(204, async (tx) => {
          const role = await store.role(tx, call.name);
          if (role !== null) await store.deleteRole(tx, call.name, role);
        });
        return answerNoContent(call);
      },
    },
    roleId: {
      GET: async (call) => {
        const role = await new AppRoleStore(call.prefix).role(call.storage, call.name);
        if (role === null) throw notFound();
        return answerData(call, { role_id: role.role_id });
      },
      POST: roleIdUpdate,
      PUT: roleIdUpdate,
    },
    secretId: {
      POST: generateSecretId,
      PUT: generateSecretId,
      LIST: async (call) => {
        const store = new AppRoleStore(call.prefix);
        await existingRole(call, store);
        return answerKeys(call, await store.accessors(call.storage, call.name));
      },
    },
    secretIdLookup: {
      POST: async (call) => {
        const store = new AppRoleStore(call.prefix);
        const secretId = secretIdField(call);
        await existingRole(call, store);
        const entry = await store.secretId(call.storage, call.name, await store.secretIdHash(call.storage, secretId));
        if (entry === null || !secretIdLive(entry, Date.now())) return answerNoContent(call);
        return answerData(call, secretIdData(entry));
      },
    },
    secretIdDestroy: { POST: destroySecretId, PUT: destroySecretId, DELETE: destroySecretId },
    accessorLookup: {
      POST: async (call) => {
        const store = new AppRoleStore(call.prefix);
        const accessor = accessorField(call);
        await existingRole(call, store);
        const hash = await store.hashByAccessor(call.storage, call.name, accessor);
        const entry = hash === null ? null : await store.secretId(call.storage, call.name, hash);
        // Vault answers 404 with the message in `data.error`.
        if (entry === null) return call.reply.code(404).send(vaultResponse(call.request, { error: missingAccessor(accessor) }));
        return answerData(call, secretIdData(entry));
      },
    },
    accessorDestroy: { POST: destroyByAccessor, PUT: destroyByAccessor, DELETE: destroyByAccessor },
  },
};

async function roleIdUpdate(call: AuthMethodCall): Promise<unknown> {
  const store = new AppRoleStore(call.prefix);
  const value = field(call.body, "role_id");
  if (value === undefined || value === null || value === "") throw badRequest("missing role_id");
  const roleId = boundedString(value, "role_id", MAX_SECRET_BYTES);
  await call.mutate(204, async (tx) => {
    const previous = await store.role(tx, call.name);
    if (previous === null) throw roleDoesNotExist(call.name);
    if (!(await store.putRole(tx, call.name, { ...previous, role_id: roleId }, previous))) throw badRequest("role_id already in use");
  });
  return answerNoContent(call);
}

async function destroySecretId(call: AuthMethodCall): Promise<unknown> {
  const store = new AppRoleStore(call.prefix);
  const secretId = secretIdField(call);
  await call.mutate(204, async (tx) => {
    if ((await store.role(tx, call.name)) === null) throw roleDoesNotExist(call.name);
    await store.deleteSecretId(tx, call.name, await store.secretIdHash(tx, secretId));
  });
  return answerNoContent(call);
}

async function destroyByAccessor(call: AuthMethodCall): Promise<unknown> {
  const store = new AppRoleStore(call.prefix);
  const accessor = accessorField(call);
  await call.mutate(204, async (tx) => {
    if ((await store.role(tx, call.name)) === null) throw roleDoesNotExist(call.name);
    const hash = await store.hashByAccessor(tx, call.name, accessor);
    if (hash === null || !(await store.deleteSecretId(tx, call.name, hash))) throw new VaultError(404, missingAccessor(accessor));
  });
  return answerNoContent(call);
}
