import { authBlock } from "../routes/auth-token-response.js";
import type { Transaction } from "@egide/storage-core";
import type { TokenEntry, TokenStore } from "../auth/token-store.js";
import { type AuthMount, authMountStoragePrefix } from "./auth-mount-table.js";
import type { TokenSettings } from "./token-settings.js";

/** The server's token TTL limits (its `[tokens]` configuration), ms. */
export interface SystemTokenLimits {
  defaultTtlMs: number;
  maxTtlMs: number;
}

/** The storage prefix, inside a method's data, of the accessors of the tokens it issued. */
export function issuedTokensPrefix(mount: Pick<AuthMount, "uuid">): string {
  return `${authMountStoragePrefix(mount)}issued-tokens/`;
}

/**
 * Creates, inside `tx`, the token a successful login gets: exactly the settings' policies plus
 * `default` unless `token_no_default_policy`, no parent (login tokens are orphans, as in
 * Vault), a TTL of `token_ttl` or the mount's default, never beyond `token_max_ttl`,
 * `token_explicit_max_ttl`, the mount's maximum or the server's. Its accessor is recorded below
 * the method's data so that disabling the method revokes it.
 */
export async function issueLoginToken(
  tx: Transaction,
  tokens: TokenStore,
  mount: AuthMount,
  settings: TokenSettings,
  limits: SystemTokenLimits,
  identity: { displayName: string; meta: Record<string, string> },
): Promise<{ token: string; entry: TokenEntry }> {
  const systemMax = Math.floor(limits.maxTtlMs / 1000);
  const mountMax = mount.config.max_lease_ttl > 0 ? Math.min(mount.config.max_lease_ttl, systemMax) : systemMax;
  let maxTtl = mountMax;
  if (settings.token_max_ttl > 0) maxTtl = Math.min(maxTtl, settings.token_max_ttl);
  if (settings.token_explicit_max_ttl > 0) maxTtl = Math.min(maxTtl, settings.token_explicit_max_ttl);
  const mountDefault = mount.config.default_lease_ttl > 0 ? mount.config.default_lease_ttl : Math.floor(limits.defaultTtlMs / 1000);
  // A TTL of 0 is the default, never "forever"; and never past the maximum.
  const ttl = Math.max(1, Math.min(settings.token_ttl > 0 ? settings.token_ttl : mountDefault, maxTtl));
  const policies = settings.token_no_default_policy ? [...settings.token_policies] : [...settings.token_policies, "default"];
  const issued = await tokens.create(tx, {
    policies: policies.filter((name) => name !== "root"),
    displayName: identity.displayName,
    meta: identity.meta,
    ttlMs: ttl * 1000,
    maxTtlMs: Math.max(ttl, maxTtl) * 1000,
    renewable: true,
    parentAccessor: null,
  });
  await tx.put(issuedTokensPrefix(mount) + issued.entry.accessor, Buffer.alloc(0));
  return issued;
}

/**
 * Revokes, inside `tx`, every token `mount` issued (Vault revokes a method's tokens when it is
 * disabled), through the token store's own revocation. Tokens already expired or revoked are
 * skipped by it.
 */
export async function revokeIssuedTokens(tx: Transaction, tokens: TokenStore, mount: AuthMount): Promise<number> {
  const prefix = issuedTokensPrefix(mount);
  let revoked = 0;
  let after = "";
  for (;;) {
    const page = await tx.listPage(prefix, after, 500);
    for (const accessor of page) {
      if (!accessor.endsWith("/")) {
        await tokens.revokeAccessor(tx, accessor);
        revoked += 1;
      }
    }
    const last = page.at(-1);
    if (last === undefined || page.length < 500) return revoked;
    after = last;
  }
}

/** The display name of a login token: the mount path with `-` for `/`, and the login's name (Vault's `userpass-alice`). */
export function loginDisplayName(mount: AuthMount, name: string | undefined): string {
  const base = mount.path.slice(0, -1).replaceAll("/", "-");
  return name === undefined || name === "" ? base : `${base}-${name}`;
}

/**
 * Vault's `auth` block of a login answer: the token creation's block, with the TTL granted at
 * login as `lease_duration` (never a remainder recomputed from the clock).
 */
export function loginAuthBlock(token: string, entry: TokenEntry) {
  return authBlock(token, entry, entry.creationTtlMs);
}
