import { assertNotCreatedMeanwhile } from "../created-meanwhile.js";
import { badRequest, notFound, permissionDenied } from "../../http/vault-error.js";
import { vaultResponse } from "../../http/vault-response.js";
import { field, hasField } from "../../kv/kv-input.js";
import { answerData, answerKeys, answerNoContent } from "../auth-method-answer.js";
import type { AuthMethodBackend, AuthMethodCall, AuthMethodRoute } from "../auth-method-call.js";
import { MAX_NAME_LENGTH, MAX_SECRET_BYTES, boundedString, isValidName } from "../auth-method-input.js";
import { issueLoginToken, loginAuthBlock, loginDisplayName } from "../login-token.js";
import { type PasswordHash, dummyPasswordHash, hashPassword, isPasswordHash, verifyPassword } from "../password-hash.js";
import { parsePolicyList } from "../auth-method-input.js";
import { DEFAULT_TOKEN_SETTINGS, parseTokenSettings, tokenSettingsData } from "../token-settings.js";
import { type UserEntry, UserpassStore } from "./userpass-store.js";

/** Vault's answer to every failed userpass login. */
export const INVALID_USERNAME_OR_PASSWORD = "invalid username or password";

/** The paths of a userpass mount (Vault's `builtin/credential/userpass`). */
export type UserpassKind = "login" | "users" | "user" | "password" | "policies";

/**
 * Reads the path below a userpass mount; null for a path userpass does not have. Usernames in
 * `users/` paths must already be lower case (Vault lower-cases them silently; here the path the
 * ACL checked is the path acted on, so a name that would change is refused instead). A login's
 * username is lower-cased, as in Vault: no policy is checked on it.
 */
export function userpassRoute(rest: string): AuthMethodRoute<UserpassKind> | null {
  if (rest === "users" || rest === "users/") return { kind: "users", name: "" };
  if (rest.startsWith("login/")) {
    const name = rest.slice("login/".length);
    // Checked before lower-casing: Unicode case folding maps some non-ASCII letters (the
    // Kelvin sign) onto ASCII ones, which would log in as another spelling than the one audited.
    if (name.length === 0 || name.length > MAX_NAME_LENGTH || name.includes("/") || !isValidName(name)) return null;
    return { kind: "login", name: name.toLowerCase() };
  }
  if (!rest.startsWith("users/")) return null;
  const below = rest.slice("users/".length);
  const slash = below.indexOf("/");
  const name = slash < 0 ? below : below.slice(0, slash);
  if (!isValidName(name) || name !== name.toLowerCase()) return null;
  if (slash < 0) return { kind: "user", name };
  const sub = below.slice(slash + 1);
  if (sub === "password") return { kind: "password", name };
  if (sub === "policies") return { kind: "policies", name };
  return null;
}

function passwordField(call: AuthMethodCall): string | undefined {
  const value = field(call.body, "password");
  if (value === undefined || value === null || value === "") return undefined;
  return boundedString(value, "password", MAX_SECRET_BYTES);
}

/** Hashes a new password through the limiter (outside any transaction: scrypt takes tens of ms). */
function hashNew(call: AuthMethodCall, password: string): Promise<PasswordHash> {
  return call.hashes.run(() => hashPassword(password), call.request.ip);
}

async function writeUser(call: AuthMethodCall): Promise<unknown> {
  const store = new UserpassStore(call.prefix);
  const password = passwordField(call);
  const hash = password === undefined ? undefined : await hashNew(call, password);
  await call.mutate(204, async (tx) => {
    const previous = await store.user(tx, call.name);
    assertNotCreatedMeanwhile(call, previous);
    if (previous === null && hash === undefined) throw badRequest("missing password");
    const base = previous ?? { ...DEFAULT_TOKEN_SETTINGS, token_policies: [] };
    const user: UserEntry = {
      ...parseTokenSettings(call.body, base),
      password_hash: hash ?? (previous as UserEntry).password_hash,
    };
    await store.put(tx, call.name, user);
  });
  return answerNoContent(call);
}

async function updatePassword(call: AuthMethodCall): Promise<unknown> {
  const store = new UserpassStore(call.prefix);
  const password = passwordField(call);
  if (password === undefined) throw badRequest("missing password");
  if ((await store.user(call.storage, call.name)) === null) throw badRequest("username does not exist");
  const hash = await hashNew(call, password);
  await call.mutate(204, async (tx) => {
    const user = await store.user(tx, call.name);
    if (user === null) throw badRequest("username does not exist");
    await store.put(tx, call.name, { ...user, password_hash: hash });
  });
  return answerNoContent(call);
}

async function updatePolicies(call: AuthMethodCall): Promise<unknown> {
  const store = new UserpassStore(call.prefix);
  const name = hasField(call.body, "token_policies") ? "token_policies" : "policies";
  const policies = parsePolicyList(field(call.body, name), name);
  await call.mutate(204, async (tx) => {
    const user = await store.user(tx, call.name);
    if (user === null) throw badRequest("username does not exist");
    await store.put(tx, call.name, { ...user, token_policies: policies, legacy_policies: name === "policies" });
  });
  return answerNoContent(call);
}

/**
 * `POST auth/<mount>/login/:username` (public). Exactly one scrypt runs per attempt, through
 * the limiter, whether or not the user exists (an unknown user is checked against a dummy
 * hash), and the comparison is constant-time; every failure answers the same 400. The token is
 * created in a transaction that re-reads the user and requires the same password hash, so a
 * password changed or a user deleted meanwhile does not log in.
 */
async function login(call: AuthMethodCall): Promise<unknown> {
  const store = new UserpassStore(call.prefix);
  const password = passwordField(call);
  if (password === undefined) throw badRequest("missing password");
  // Vault's user lockout: a name with too many recent failures is refused before any hashing.
  const lockKey = `${call.mount.uuid}\u0000${call.name}`;
  if (call.lockout.isLocked(lockKey)) throw permissionDenied();
  const user = isValidName(call.name) ? await store.user(call.storage, call.name) : null;
  const stored = user !== null && isPasswordHash(user.password_hash) ? user.password_hash : null;
  const matches = await call.hashes.run(() => verifyPassword(password, stored ?? dummyPasswordHash()), call.request.ip);
  if (!matches || user === null || stored === null) {
    call.lockout.recordFailure(lockKey);
    throw badRequest(INVALID_USERNAME_OR_PASSWORD);
  }
  const { token, entry } = await call.mutate(200, async (tx) => {
    const current = await store.user(tx, call.name);
    if (current === null || current.password_hash.hash !== stored.hash || current.password_hash.salt !== stored.salt) {
      throw badRequest(INVALID_USERNAME_OR_PASSWORD);
    }
    return issueLoginToken(tx, call.tokens, call.mount, current, call.limits, {
      displayName: loginDisplayName(call.mount, call.name),
      meta: { username: call.name },
    });
  });
  call.lockout.recordSuccess(lockKey);
  return call.reply.code(200).send(vaultResponse(call.request, null, { auth: loginAuthBlock(token, entry) }));
}

/** The userpass auth method. */
export const USERPASS_BACKEND: AuthMethodBackend<UserpassKind> = {
  route: userpassRoute,
  isLogin: (kind) => kind === "login",
  async exists(reader, prefix, route) {
    if (route.kind !== "user") return true;
    return (await new UserpassStore(prefix).user(reader, route.name)) !== null;
  },
  paths: {
    login: { POST: login, PUT: login },
    users: {
      LIST: async (call) => answerKeys(call, await new UserpassStore(call.prefix).names(call.storage)),
    },
    user: {
      GET: async (call) => {
        const user = await new UserpassStore(call.prefix).user(call.storage, call.name);
        if (user === null) throw notFound();
        return answerData(call, tokenSettingsData(user));
      },
      POST: writeUser,
      PUT: writeUser,
      DELETE: async (call) => {
        const store = new UserpassStore(call.prefix);
        await call.mutate(204, (tx) => store.delete(tx, call.name));
        return answerNoContent(call);
      },
    },
    password: { POST: updatePassword, PUT: updatePassword },
    policies: { POST: updatePolicies, PUT: updatePolicies },
  },
};
