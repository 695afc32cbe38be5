import type { FastifyRequest } from "fastify";
import { requestToken } from "../auth/request-token.js";
import type { TokenEntry, TokenStore } from "../auth/token-store.js";
import { badRequest } from "../http/vault-error.js";
import type { VaultError } from "../http/vault-error.js";
import { RESPONSE_WRAPPING_POLICY_NAME } from "../policy/policy.js";
import type { Caller } from "../server-context.js";

/** The one path a response-wrapping token may be used on as the request's own token. */
export const UNWRAP_PATH = "sys/wrapping/unwrap";

/**
 * Whether `entry` is a response-wrapping token's: its only policy is `response-wrapping`, which
 * no other token can be given (the policy is not assignable).
 */
export function isWrappingTokenEntry(entry: Pick<TokenEntry, "policies">): boolean {
  return entry.policies.length === 1 && entry.policies[0] === RESPONSE_WRAPPING_POLICY_NAME;
}

/** Vault's answer for a wrapping token that is unknown, expired, already used, or not one. */
export function invalidWrappingToken(): VaultError {
  return badRequest("wrapping token is not valid or does not exist");
}

/**
 * The request's own token when it is a live response-wrapping token, looked up without taking
 * its use: the unwrap endpoint takes it, in the same transaction that reads and deletes the
 * wrapped response, so that concurrent unwraps cannot both succeed. `null` otherwise (no token,
 * or another kind of token, which is then authenticated as usual).
 */
export async function wrappingTokenSession(
  tokens: Pick<TokenStore, "lookup">,
  request: FastifyRequest,
): Promise<{ token: string; entry: TokenEntry; caller: Caller } | null> {
  const token = requestToken(request);
  if (token === undefined) return null;
  const entry = await tokens.lookup(token);
  if (entry === null || !isWrappingTokenEntry(entry)) return null;
  return { token, entry, caller: { accessor: entry.accessor, policies: entry.policies, displayName: entry.displayName } };
}
