import type { Capability } from "../server-context.js";
import { CAPABILITIES, ROOT_POLICY_NAME } from "./policy.js";
import type { Policy } from "./policy.js";

// Capabilities as bits, as Vault keeps them.
const BIT: Readonly<Record<Capability, number>> = {
  deny: 1,
  create: 2,
  read: 4,
  update: 8,
  delete: 16,
  list: 32,
  sudo: 64,
  patch: 128,
};
const DENY = BIT.deny;

/** Every capability but `deny`: what the root policy grants everywhere. */
const ROOT_CAPABILITIES: readonly Capability[] = CAPABILITIES.filter((capability) => capability !== "deny");

// A rule with `+` segments (Vault's "segment wildcard path").
interface SegmentRule {
  /** The pattern without its trailing `*`. */
  pattern: string;
  /** `pattern` split on `/`. */
  parts: string[];
  /** Whether the rule ends with `*`. */
  isPrefix: boolean;
  /** Where the first `+` is. */
  firstWildcard: number;
  /** How many segments are exactly `+`. */
  wildcards: number;
  bits: number;
}

// A candidate match among the non-exact rules, with what Vault ranks it by.
interface Candidate {
  firstWildcard: number;
  isPrefix: boolean;
  wildcards: number;
  pattern: string;
  bits: number;
}

/**
 * An access-control list built from a token's policies, with Vault's semantics
 * (`vault/acl.go`):
 *
 * - An exact rule for the path wins over every wildcard rule.
 * - Otherwise, among the matching prefix (`foo/*`) and segment-wildcard (`foo/+/bar`) rules, the
 *   most specific wins, by Vault's priority order: the first `+` or `*` appearing later; then a
 *   rule not ending in `*` over one that does; then fewer `+` segments; then the longer
 *   pattern; then the lexically greater one.
 * - `+` matches exactly one non-empty path segment; a trailing `*` matches any suffix.
 * - Rules for the same path pattern from several policies (or several stanzas of one) merge:
 *   the union of their capabilities, unless one of them has `deny`, which then is all that
 *   remains. A winning rule with `deny` denies everything.
 * - A path no rule matches is denied.
 * - A `list` check of a path ending in `/` (as list requests are) also accepts rules written
 *   without the slash: the exact rule `foo`, then the wildcard rules matching `foo`, then those
 *   matching `foo/`.
 *
 * One deliberate difference from Vault: Vault's `+` also matches an empty segment (so
 * `secret/+` matches `secret/`); here it does not.
 */
export class Acl {
  /** Whether this is the root ACL, which allows everything. */
  readonly isRoot: boolean;

  readonly #exact = new Map<string, number>();
  // Prefix rules (keyed by the path before the `*`), longest first.
  readonly #prefixes = new Map<string, number>();
  #prefixOrder: string[] = [];
  // Segment-wildcard rules, keyed by the path as written (trailing `*` included).
  readonly #segments = new Map<string, SegmentRule>();

  static readonly #root = new Acl(true);

  private constructor(isRoot: boolean) {
    this.isRoot = isRoot;
  }

  /** The ACL that allows everything (the `root` policy). */
  static root(): Acl {
    return Acl.#root;
  }

  /**
   * The ACL of a token holding `policies`. A policy named `root` gives the root ACL; as in
   * Vault, it cannot be combined with other policies (that throws).
   */
  static fromPolicies(policies: readonly Policy[]): Acl {
    if (policies.some((policy) => policy.name === ROOT_POLICY_NAME)) {
      if (policies.length !== 1) throw new Error("other policies present along with root");
      return Acl.#root;
    }
    const acl = new Acl(false);
    for (const policy of policies) {
      for (const rule of policy.rules) {
        const bits = rule.capabilities.reduce((sum, capability) => sum | BIT[capability], 0);
        if (rule.segmentWildcards) {
          const pattern = rule.prefix ? rule.path.slice(0, -1) : rule.path;
          const existing = acl.#segments.get(rule.path);
          if (existing) {
            existing.bits = merge(existing.bits, bits);
          } else {
            const parts = pattern.split("/");
            acl.#segments.set(rule.path, {
              pattern,
              parts,
              isPrefix: rule.prefix,
              firstWildcard: rule.path.indexOf("+"),
              wildcards: parts.filter((part) => part === "+").length,
              bits,
            });
          }
        } else {
          const tree = rule.prefix ? acl.#prefixes : acl.#exact;
          const key = rule.prefix ? rule.path.slice(0, -1) : rule.path;
          const existing = tree.get(key);
          tree.set(key, existing === undefined ? bits : merge(existing, bits));
        }
      }
    }
    acl.#prefixOrder = [...acl.#prefixes.keys()].sort((a, b) => b.length - a.length);
    return acl;
  }

  /**
   * The capabilities granted on `path` (a Vault path without `/v1/`), as Vault's
   * `sys/capabilities` computes them: `{"deny"}` alone when the path is denied or matches no
   * rule. The lookup is the one of a list request (a path ending in `/` also matches rules
   * written without it). The root ACL has every capability but `deny`.
   */
  capabilities(path: string): Set<Capability> {
    if (this.isRoot) return new Set(ROOT_CAPABILITIES);
    const bits = this.#lookup(path, true);
    if (bits === undefined || (bits & DENY) !== 0 || bits === 0) return new Set<Capability>(["deny"]);
    return new Set(ROOT_CAPABILITIES.filter((capability) => (bits & BIT[capability]) !== 0));
  }

  /**
   * Whether `capability` is allowed on `path`. Only a `list` check applies the trailing-slash
   * fallbacks of list requests. Checking `deny` itself always answers `false`.
   */
  allows(path: string, capability: Capability): boolean {
    if (capability === "deny") return false;
    if (this.isRoot) return true;
    const bits = this.#lookup(path, capability === "list");
    if (bits === undefined || (bits & DENY) !== 0) return false;
    return (bits & BIT[capability]) !== 0;
  }

  // The capability bits of the rule that governs `path`, or undefined when none matches
  // (Vault's AllowOperation, without the parameter and wrapping checks).
  #lookup(rawPath: string, list: boolean): number | undefined {
    let path = rawPath;
    while (path.startsWith("/")) path = path.slice(1);

    const exact = this.#exact.get(path);
    if (exact !== undefined) return exact;
    const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
    if (list) {
      const exactTrimmed = this.#exact.get(trimmed);
      if (exactTrimmed !== undefined) return exactTrimmed;
      if (trimmed !== path) {
        const wildcard = this.#nonExact(trimmed);
        if (wildcard !== undefined) return wildcard;
      }
    }
    return this.#nonExact(path);
  }

  // Vault's CheckAllowedFromNonExactPaths: the longest matching prefix rule and every matching
  // segment-wildcard rule compete; the highest priority wins.
  #nonExact(path: string): number | undefined {
    let best: Candidate | undefined;
    for (const prefix of this.#prefixOrder) {
      if (path.startsWith(prefix)) {
        const bits = this.#prefixes.get(prefix) as number;
        if (this.#segments.size === 0) return bits;
        best = { firstWildcard: prefix.length, isPrefix: true, wildcards: 0, pattern: prefix, bits };
        break;
      }
    }
    if (this.#segments.size === 0) return undefined;

    const pathParts = path.split("/");
    for (const rule of this.#segments.values()) {
      if (pathParts.length < rule.parts.length) continue;
      if (!rule.isPrefix && pathParts.length !== rule.parts.length) continue;
      if (!segmentsMatch(rule, pathParts)) continue;
      const candidate: Candidate = rule;
      if (best === undefined || lowerPriority(best, candidate)) best = candidate;
    }
    return best?.bits;
  }
}

function segmentsMatch(rule: SegmentRule, pathParts: readonly string[]): boolean {
  const last = rule.parts.length - 1;
  for (let i = 0; i <= last; i++) {
    const aclPart = rule.parts[i] as string;
    const pathPart = pathParts[i] as string;
    if (aclPart === "+") {
      if (pathPart === "") return false;
      continue;
    }
    if (aclPart === pathPart) continue;
    if (rule.isPrefix && i === last && pathPart.startsWith(aclPart)) continue;
    return false;
  }
  return true;
}

// Vault's priority order among matching non-exact rules: whether `a` ranks below `b`.
function lowerPriority(a: Candidate, b: Candidate): boolean {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard < b.firstWildcard;
  if (a.isPrefix !== b.isPrefix) return a.isPrefix;
  if (a.wildcards !== b.wildcards) return a.wildcards > b.wildcards;
  if (a.pattern.length !== b.pattern.length) return a.pattern.length < b.pattern.length;
  return a.pattern < b.pattern;
}

// Merging two rules for the same pattern: deny absorbs everything, otherwise the union.
function merge(existing: number, added: number): number {
  if ((existing & DENY) !== 0) return existing;
  if ((added & DENY) !== 0) return DENY;
  return existing | added;
}
