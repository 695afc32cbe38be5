import { badRequest } from "../http/vault-error.js";

/**
 * Policies Vault never assigns to a token that a client asks for: `response-wrapping` belongs to
 * wrapping tokens alone (a token holding only it is treated as one), `control-group` to Vault
 * Enterprise's control groups.
 */
export const NON_ASSIGNABLE_POLICIES: ReadonlySet<string> = new Set(["response-wrapping", "control-group"]);

/** Refuses (400, Vault's message) a list of policy names holding a non-assignable one. */
export function assertAssignablePolicies(names: readonly string[]): void {
  for (const name of names) if (NON_ASSIGNABLE_POLICIES.has(name)) throw badRequest(`cannot assign policy "${name}"`);
}
