/**
 * A reference model of Vault's token tree and ACL effects for the model-based test: tokens
 * created by root or by another token (policies a subset of the parent's, plus `default`),
 * revoked with their whole subtree, revoked as orphans (their children live on, parentless),
 * and what a live token may do on the run's KV prefix given the policies it names (a policy
 * deleted, or never written, grants nothing; `deny` anywhere wins).
 */

/** The capabilities a generated policy grants on the run's `secret/data/<prefix>/*`. */
export type ModelCapability = "read" | "create" | "update" | "deny";

/** One token the run created. `parent` is an index into the run's tokens, or null (root's child or orphaned). */
export interface ModelToken {
  alive: boolean;
  parent: number | null;
  /** Policy names as the test names them (`creator`, `a`, `b`), without `default`. */
  policies: string[];
}

/** The names of the generated policies (prefixed with the run's id on the server). */
export const MODEL_POLICIES = ["creator", "a", "b"] as const;
/** A generated policy's name. */
export type ModelPolicyName = (typeof MODEL_POLICIES)[number];

/** Marks `index` and every token below it revoked (Vault revokes the subtree). */
export function modelRevoke(tokens: ModelToken[], index: number): void {
  const doomed = new Set<number>([index]);
  let grew = true;
  while (grew) {
    grew = false;
    tokens.forEach((token, i) => {
      if (token.parent !== null && doomed.has(token.parent) && !doomed.has(i)) {
        doomed.add(i);
        grew = true;
      }
    });
  }
  for (const i of doomed) (tokens[i] as ModelToken).alive = false;
}

/** Revokes `index` only; its children become orphans. */
export function modelRevokeOrphan(tokens: ModelToken[], index: number): void {
  (tokens[index] as ModelToken).alive = false;
  for (const token of tokens) if (token.parent === index) token.parent = null;
}

/** The capabilities a token holds on the run's KV prefix, from the policies it names. */
export function capabilitiesOf(token: ModelToken, policies: Map<string, ModelCapability[]>): Set<ModelCapability> {
  const held = new Set<ModelCapability>();
  for (const name of token.policies) for (const capability of policies.get(name) ?? []) held.add(capability);
  if (held.has("deny")) return new Set();
  return held;
}
