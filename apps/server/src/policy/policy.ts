import { badRequest } from "../http/vault-error.js";
import type { Capability } from "../server-context.js";

/** Every capability a policy may grant, in the order Vault lists them. */
export const CAPABILITIES: readonly Capability[] = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny"];

/**
 * One `path` stanza of a policy.
 *
 * Vault's three kinds of rule, told apart by {@link PathRule.prefix} and
 * {@link PathRule.segmentWildcards}:
 * - exact (`secret/data/app`): the path and nothing else;
 * - prefix (`secret/data/*`): every path starting with the part before the `*`;
 * - segment wildcard (`secret/+/config`, `secret/+/*`): `+` stands for exactly one path segment,
 *   and a trailing `*` (if any) for any suffix of the last segment and everything below it.
 */
export interface PathRule {
  /** The path as written, without a leading `/` (Vault strips it), trailing `*` included. */
  path: string;
  /**
   * The capabilities granted, deduplicated, in {@link CAPABILITIES} order. `["deny"]` alone
   * when the stanza denies (a `deny` overrides every other capability of the stanza).
   */
  capabilities: Capability[];
  /** Whether the path ends with the glob `*`. */
  prefix: boolean;
  /**
   * Whether Vault treats the path as a segment-wildcard path: it is `+`, starts with `+/` or
   * contains `/+`.
   */
  segmentWildcards: boolean;
  /** For segment-wildcard paths: the path without its trailing `*`, split on `/`. */
  segments?: string[];
  /**
   * Fields of the stanza that are accepted for compatibility but NOT enforced by Egide
   * (`allowed_parameters`, `denied_parameters`, `required_parameters`, `min_wrapping_ttl`,
   * `max_wrapping_ttl`). Listed so callers can warn about them.
   */
  unenforced?: string[];
}

/** The syntax a policy was written in. */
export type PolicyFormat = "hcl" | "json";

/** A parsed ACL policy. */
export interface Policy {
  /** The normalised (lower-case) name. */
  name: string;
  /**
   * The stanzas: for JSON in the order written, for HCL sorted by path (the HCL parser's
   * output); stanzas of one path stay in the order written. Order has no effect on the ACL
   * (stanzas of the same path are merged when it is built).
   */
  rules: PathRule[];
  /** The text exactly as written, returned by reads. */
  raw: string;
  /** The syntax of {@link Policy.raw}. */
  format: PolicyFormat;
}

/** The policy every token of the root kind carries; it allows everything and is never stored. */
export const ROOT_POLICY_NAME = "root";
/** The policy Vault attaches to tokens by default; it exists even when never written. */
export const DEFAULT_POLICY_NAME = "default";

/** The longest policy name accepted. */
export const MAX_POLICY_NAME_LENGTH = 128;

const POLICY_NAME = /^[a-z0-9._-]+$/;

/**
 * Vault's normalisation of a policy name (surrounding spaces dropped, lower-cased), then
 * Egide's checks: 1 to 128 characters of `[a-z0-9._-]`, and not `.` or `..`. Throws a 400
 * `VaultError` otherwise.
 */
export function normalizePolicyName(name: string): string {
  const normalized = name.trim().toLowerCase();
  if (normalized === "") throw badRequest("policy name must be provided in the URL");
  if (normalized.length > MAX_POLICY_NAME_LENGTH) {
    throw badRequest(`policy name is too long: at most ${MAX_POLICY_NAME_LENGTH} characters are allowed`);
  }
  if (!POLICY_NAME.test(normalized) || normalized === "." || normalized === "..") {
    throw badRequest(`invalid policy name ${JSON.stringify(name)}: only letters, digits, '.', '_' and '-' are allowed`);
  }
  return normalized;
}
