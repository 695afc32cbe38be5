import { badRequest } from "../../http/vault-error.js";
import { vaultResponse } from "../../http/vault-response.js";
import { field } from "../../kv/kv-input.js";
import type { AuthMethodCall } from "../auth-method-call.js";
import { MAX_SECRET_BYTES, boundedString } from "../auth-method-input.js";
import { addressInCidrs } from "../cidr-list.js";
import { issueLoginToken, loginAuthBlock, loginDisplayName } from "../login-token.js";
import { type AppRoleEntry, AppRoleStore, type SecretIdEntry } from "./approle-store.js";

/** Vault's answer to every unknown role id, unknown, expired or used-up secret id. */
export const INVALID_ROLE_OR_SECRET_ID = "invalid role or secret ID";

type Reader = Parameters<AppRoleStore["role"]>[0];

/** What a login was checked against: the role, and the secret id's hash and entry when the role binds one. */
interface Checked {
  name: string;
  role: AppRoleEntry;
  secret: { hash: string; entry: SecretIdEntry } | null;
}

/**
 * Vault's AppRole login checks, against what `reader` sees: the role id names a role; with
 * `bind_secret_id`, the secret id (looked up by its keyed hash, so no comparison of secrets
 * happens at all) exists, has not expired and has uses left; the client address is inside the
 * secret id's `cidr_list` and the role's `secret_id_bound_cidrs`. Failures are 400s with
 * Vault's messages, which never contain the secret id.
 */
async function check(
  store: AppRoleStore,
  reader: Reader,
  roleId: string,
  secretId: string,
  address: string,
  now: number,
): Promise<Checked> {
  const name = await store.roleNameById(reader, roleId);
  const role = name === null ? null : await store.role(reader, name);
  if (name === null || role === null || role.role_id !== roleId) throw badRequest(INVALID_ROLE_OR_SECRET_ID);
  let secret: Checked["secret"] = null;
  if (role.bind_secret_id) {
    if (secretId === "") throw badRequest("missing secret_id");
    const hash = await store.secretIdHash(reader, secretId);
    const entry = await store.secretId(reader, name, hash);
    if (entry === null || (entry.expires !== null && entry.expires <= now)) throw badRequest(INVALID_ROLE_OR_SECRET_ID);
    if (entry.cidr_list.length > 0 && !addressInCidrs(address, entry.cidr_list)) {
      throw badRequest(`source address ${JSON.stringify(address)} unauthorized by CIDR restrictions on the secret ID`);
    }
    secret = { hash, entry };
  }
  if (role.secret_id_bound_cidrs.length > 0 && !addressInCidrs(address, role.secret_id_bound_cidrs)) {
    throw badRequest(`source address ${JSON.stringify(address)} unauthorized by CIDR restrictions on the role`);
  }
  return { name, role, secret };
}

/**
 * `POST auth/<mount>/login` (public). The checks run once without a transaction (a refused
 * login takes no write lock), then again inside the transaction that consumes one use of the
 * secret id (deleting it at its last use) and creates the token: two concurrent logins cannot
 * both spend the last use, and a failure leaves the secret id as it was.
 */
export async function appRoleLogin(call: AuthMethodCall): Promise<unknown> {
  const store = new AppRoleStore(call.prefix);
  const roleIdValue = field(call.body, "role_id");
  if (roleIdValue === undefined || roleIdValue === null || (typeof roleIdValue === "string" && roleIdValue.trim() === "")) {
    throw badRequest("missing role_id");
  }
  const roleId = boundedString(roleIdValue, "role_id", MAX_SECRET_BYTES).trim();
  const secretValue = field(call.body, "secret_id") ?? "";
  const secretId = boundedString(secretValue, "secret_id", MAX_SECRET_BYTES).trim();
  const address = call.request.ip;
  await check(store, call.storage, roleId, secretId, address, Date.now());
  const { token, entry } = await call.mutate(200, async (tx) => {
    const now = Date.now();
    const checked = await check(store, tx, roleId, secretId, address, now);
    const meta: Record<string, string> = { ...(checked.secret?.entry.metadata ?? {}), role_name: checked.name };
    if (checked.secret !== null) {
      const { hash, entry: secret } = checked.secret;
      if (secret.num_uses === 1) await store.deleteSecretId(tx, checked.name, hash);
      else if (secret.num_uses > 1)
        await store.putSecretId(tx, checked.name, hash, { ...secret, num_uses: secret.num_uses - 1, updated: now });
    }
    return issueLoginToken(tx, call.tokens, call.mount, checked.role, call.limits, {
      displayName: loginDisplayName(call.mount, undefined),
      meta,
    });
  });
  return call.reply.code(200).send(vaultResponse(call.request, null, { auth: loginAuthBlock(token, entry) }));
}
