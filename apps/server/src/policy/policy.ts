import { badRequest } from "../http/vault-error.js";
import type { Capability } from "../server-context.js";
import type { ParameterValueMap } from "./parameter-constraints.js";

/** Every capability a policy may grant, in the order Vault lists them. */
export const CAPABILITIES: readonly Capability[] = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny"];

/**
 * One `path` stanza of a policy.
 *
 * Vault's three kinds of rule, told apart by {@link PathRule.prefix} and
 * {@link PathRule.segmentWildcards}:
 * - exact (`secret/data/app`): the path and nothing else;
 * - prefix (`secret/data/*`): every path starting with the part before the `*`;
 * - segment wildcard (`secret/+/config`, `secret/+/*`): `+` stands for exactly one path segment
 *   (any text without `/`, the empty text included, as in Vault), and a trailing `*` (if any)
 *   for any suffix of the last segment and everything below it.
 *
 * The parameter constraints are enforced by the ACL (see `parameter-constraints.ts`), the
 * wrapping TTLs by the request pipeline (from the ACL's result); a stanza holds no other field
 * that could restrict access (the Enterprise fields are refused when parsing).
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
   * `allowed_parameters`: parameter name (lower-cased, or `*`) → the values allowed (an empty
   * list allows any value). Absent when the stanza has none, an empty map, or denies.
   */
  allowedParameters?: ParameterValueMap;
  /**
   * `denied_parameters`: parameter name (lower-cased, or `*`) → the values denied (an empty list
   * denies any value). Absent when the stanza has none, an empty map, or denies.
   */
  deniedParameters?: ParameterValueMap;
  /** `required_parameters`, as written. Absent when the stanza has none or denies. */
  requiredParameters?: string[];
  /**
   * `min_wrapping_ttl` in milliseconds: a request on the path must ask for response wrapping
   * with at least this TTL. Absent when the stanza has none (or 0), or denies.
   */
  minWrappingTtlMs?: number;
  /**
   * `max_wrapping_ttl` in milliseconds: a request on the path must ask for response wrapping
   * with at most this TTL. Absent when the stanza has none (or 0), or denies.
   */
  maxWrappingTtlMs?: number;
}

/** The syntax a policy was written in. */
export type PolicyFormat = "hcl" | "json";

/** A parsed ACL policy. */
export interface Policy {
  /** The name (canonical: see {@link validatePolicyName}). */
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
/**
 * The policy of response-wrapping tokens (Vault's name): built in, never stored, and neither
 * writable, deletable nor assignable to another token.
 */
export const RESPONSE_WRAPPING_POLICY_NAME = "response-wrapping";

/** The longest policy text accepted, in UTF-8 bytes (checked before any parsing). */
export const MAX_POLICY_BYTES = 64 * 1024;

/** The most `path` stanzas a policy may hold. */
export const MAX_POLICY_PATHS = 2000;

/** The longest policy name accepted. */
export const MAX_POLICY_NAME_LENGTH = 128;

const POLICY_NAME = /^[a-z0-9._-]+$/;
const ASCII_UPPER = /[A-Z]/;

/**
 * Checks that `name` is a canonical policy name, as the request pipeline hands it over (see
 * {@link canonicalPolicyName}): 1 to 128 characters of `[a-z0-9._-]`, and not `.` or `..`.
 * Nothing is trimmed or lower-cased. Returns `name`; throws a 400 `VaultError` otherwise.
 */
export function validatePolicyName(name: string): string {
  if (name === "") throw badRequest("policy name must be provided in the URL");
  if (name.length > MAX_POLICY_NAME_LENGTH) {
    throw badRequest(`policy name is too long: at most ${MAX_POLICY_NAME_LENGTH} characters are allowed`);
  }
  if (!POLICY_NAME.test(name) || name === "." || name === "..") {
    if (ASCII_UPPER.test(name) && POLICY_NAME.test(asciiLowerCase(name))) {
      throw badRequest(`invalid policy name ${JSON.stringify(name)}: policy names are lower-case`);
    }
    throw badRequest(`invalid policy name ${JSON.stringify(name)}: only letters, digits, '.', '_' and '-' are allowed`);
  }
  return name;
}

/**
 * The canonical form of a policy name as a client wrote it: ASCII letters lower-cased (A–Z to
 * a–z, nothing else: Unicode case folding would turn, say, the Kelvin sign U+212A into "k"),
 * then checked by {@link validatePolicyName} (throws a 400 `VaultError`). Surrounding spaces are
 * not dropped: a name with spaces is invalid.
 */
export function canonicalPolicyName(name: string): string {
  return validatePolicyName(asciiLowerCase(name));
}

function asciiLowerCase(text: string): string {
  let lowered = "";
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    lowered += code >= 0x41 && code <= 0x5a ? String.fromCharCode(code + 0x20) : text[i];
  }
  return lowered;
}
