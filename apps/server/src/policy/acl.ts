import type { Capability, Operation } from "../server-context.js";
import { copyValueMap, mergeRequired, mergeValueMaps, parametersAllowed } from "./parameter-constraints.js";
import type { ParameterConstraints } from "./parameter-constraints.js";
import { CAPABILITIES, ROOT_POLICY_NAME } from "./policy.js";
import type { PathRule, Policy } from "./policy.js";

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
const SUDO = BIT.sudo;
// The capabilities hasMountAccess counts as access (every one but deny).
const ACCESS = BIT.create | BIT.read | BIT.update | BIT.delete | BIT.list | BIT.sudo | BIT.patch;

/** Every capability but `deny`: what the root policy grants everywhere. */
const ROOT_CAPABILITIES: readonly Capability[] = CAPABILITIES.filter((capability) => capability !== "deny");

// The capability each operation needs.
const OPERATION_BITS: ReadonlyMap<Operation, number> = new Map<Operation, number>([
  ["create", BIT.create],
  ["read", BIT.read],
  ["update", BIT.update],
  ["patch", BIT.patch],
  ["delete", BIT.delete],
  ["list", BIT.list],
]);

// The operations whose parameters are checked (Vault also checks "recover", which Egide lacks).
const PARAMETER_CHECKED: ReadonlySet<Operation> = new Set<Operation>(["read", "update", "create", "patch"]);

/** Vault's ACLResults. */
export interface AclResult {
  allowed: boolean;
  /** sudo granted on the path (Vault's RootPrivs) */
  sudo: boolean;
  isRoot: boolean;
  /**
   * The capabilities of the rule that governed the check (`{"deny"}` for a deny rule), empty
   * when none matched; every capability but `deny` for the root ACL.
   */
  capabilities: Set<Capability>;
  /**
   * The governing rule's `min_wrapping_ttl` (merged over its stanzas), in ms; 0 for none. Set
   * whether or not the check was capabilities-only: the request pipeline enforces it (see
   * {@link wrappingTtlAllowed}).
   */
  minWrappingTtlMs: number;
  /** The governing rule's `max_wrapping_ttl` (merged over its stanzas), in ms; 0 for none. */
  maxWrappingTtlMs: number;
}

/**
 * Vault's wrapping-TTL check of `AllowOperation`: with a maximum, the request must be wrapped
 * with at most that TTL; with a minimum, with at least that TTL; and a merged minimum above the
 * merged maximum allows nothing. `wrapTtlMs` is the TTL the request asked for (undefined: not
 * wrapped).
 */
export function wrappingTtlAllowed(
  bounds: { minWrappingTtlMs?: number; maxWrappingTtlMs?: number },
  wrapTtlMs: number | undefined,
): boolean {
  const min = bounds.minWrappingTtlMs ?? 0;
  const max = bounds.maxWrappingTtlMs ?? 0;
  if (max > 0 && (wrapTtlMs === undefined || wrapTtlMs > max)) return false;
  if (min > 0 && (wrapTtlMs === undefined || wrapTtlMs < min)) return false;
  return !(min > 0 && max > 0 && max < min);
}

/** What {@link Acl.allowOperation} checks: a request's path, operation and parameters. */
export interface AclRequest {
  /** The Vault path, without `/v1/` (leading slashes are ignored). */
  path: string;
  operation: Operation;
  /** The request's parameters: body fields for writes, query fields for reads. */
  data?: Readonly<Record<string, unknown>>;
}

// Vault's ACLPermissions (of the parts Egide has): the capability bits, the parameter
// constraints and the wrapping TTLs (ms, 0 for none) of one path pattern, merged over every
// stanza and policy.
interface Permissions extends ParameterConstraints {
  bits: number;
  minWrappingTtlMs: number;
  maxWrappingTtlMs: number;
}

// A segment-wildcard rule (a path with `+` segments).
interface SegmentRule {
  /** The path without its trailing `*` (Vault's wcPath). */
  pattern: string;
  /** `pattern` split on `/`. */
  parts: string[];
  /** Whether the rule ends with `*`. */
  isPrefix: boolean;
  /** Where the first `+` is in the rule (Vault's firstWCOrGlob). */
  firstWildcard: number;
  /** How many segments are exactly `+`. */
  wildcards: number;
  perms: Permissions;
}

// A matching non-exact rule, with what Vault ranks it by (Vault's wcPathDescr).
interface Candidate {
  firstWildcard: number;
  isPrefix: boolean;
  wildcards: number;
  pattern: string;
  perms: Permissions;
}

/**
 * An access-control list built from a token's policies: Vault's `vault/acl.go` (`NewACL`,
 * `AllowOperation`, `CheckAllowedFromNonExactPaths`, `Capabilities`) and `hasMountAccess`.
 *
 * - An exact rule for the path wins over every wildcard rule.
 * - Otherwise, among the longest matching prefix rule (`foo/*`) and every matching
 *   segment-wildcard rule (`foo/+/bar`), the most specific wins, by Vault's priority order: the
 *   first `+` or `*` appearing later; then a rule not ending in `*` over one that does; then
 *   fewer `+` segments; then the longer pattern; then the lexically greater one.
 * - `+` matches exactly one path segment, whatever it holds, the empty segment included (so
 *   `secret/+` matches `secret/`), as in Vault; a trailing `*` matches any suffix.
 * - Rules for the same path pattern from several policies (or several stanzas of one) merge:
 *   the union of their capabilities, unless one of them has `deny`, which then is all that
 *   remains; parameter constraints merge as in Vault (see `parameter-constraints.ts`). A winning
 *   rule with `deny` denies everything.
 * - A path no rule matches is denied.
 * - A `list` of a path `foo/` (list requests end with `/`) also accepts an exact rule written
 *   `foo`; then, as Vault does since its fix of the LIST deny bypass, the wildcard rules matching
 *   `foo` and those matching `foo/` compete together: the most specific rule denying wins if it
 *   ranks above the most specific rule granting `list`; otherwise that one wins (so `foo*` or
 *   `+` rules written for `foo` still grant the list). A deny on `foo/*` thus also denies the
 *   list of `foo/` when `list` is granted only by a broader rule such as `*`.
 * - Parameters (`allowed_parameters`, `denied_parameters`, `required_parameters`) are checked
 *   for read, create, update and patch, as Vault does.
 */
export class Acl {
  /** Whether this is the root ACL, which allows everything. */
  readonly isRoot: boolean;

  readonly #exact = new Map<string, Permissions>();
  // Prefix rules (keyed by the path before the `*`), and their keys longest first.
  readonly #prefixes = new Map<string, Permissions>();
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
   * The ACL of a token holding `policies` (Vault's `NewACL`). A policy named `root` gives the
   * root ACL; as in Vault, it cannot be combined with other policies (that throws).
   */
  static fromPolicies(policies: readonly Policy[]): Acl {
    if (policies.some((policy) => policy.name === ROOT_POLICY_NAME)) {
      if (policies.length !== 1) throw new Error("other policies present along with root");
      return Acl.#root;
    }
    const acl = new Acl(false);
    for (const policy of policies) {
      for (const rule of policy.rules) acl.#insert(rule);
    }
    acl.#prefixOrder = [...acl.#prefixes.keys()].sort((a, b) => b.length - a.length);
    return acl;
  }

  // Adds one stanza, merged with what the same pattern already has, as NewACL does.
  #insert(rule: PathRule): void {
    const bits = rule.capabilities.reduce((sum, capability) => sum | BIT[capability], 0);
    let existing: Permissions | undefined;
    if (rule.segmentWildcards) {
      existing = this.#segments.get(rule.path)?.perms;
    } else {
      existing = (rule.prefix ? this.#prefixes : this.#exact).get(rule.prefix ? rule.path.slice(0, -1) : rule.path);
    }
    if (existing === undefined) {
      const perms: Permissions = { bits, minWrappingTtlMs: rule.minWrappingTtlMs ?? 0, maxWrappingTtlMs: rule.maxWrappingTtlMs ?? 0 };
      const allowed = copyValueMap(rule.allowedParameters);
      const denied = copyValueMap(rule.deniedParameters);
      if (allowed !== undefined) perms.allowedParameters = allowed;
      if (denied !== undefined) perms.deniedParameters = denied;
      if (rule.requiredParameters !== undefined && rule.requiredParameters.length > 0)
        perms.requiredParameters = [...rule.requiredParameters];
      this.#store(rule, perms);
      return;
    }
    // An existing deny absorbs everything.
    if ((existing.bits & DENY) !== 0) return;
    // A new deny is all that remains (Vault keeps the required parameters; they no longer matter).
    if ((bits & DENY) !== 0) {
      existing.bits = DENY;
      delete existing.allowedParameters;
      delete existing.deniedParameters;
      return;
    }
    existing.bits |= bits;
    // As Vault merges them: the lesser of two maximums, and the lesser of two minimums.
    existing.maxWrappingTtlMs = lesserNonZero(existing.maxWrappingTtlMs, rule.maxWrappingTtlMs ?? 0);
    existing.minWrappingTtlMs = lesserNonZero(existing.minWrappingTtlMs, rule.minWrappingTtlMs ?? 0);
    const allowed = mergeValueMaps(existing.allowedParameters, rule.allowedParameters);
    if (allowed !== undefined) existing.allowedParameters = allowed;
    const denied = mergeValueMaps(existing.deniedParameters, rule.deniedParameters);
    if (denied !== undefined) existing.deniedParameters = denied;
    const required = mergeRequired(existing.requiredParameters, rule.requiredParameters);
    if (required !== undefined) existing.requiredParameters = required;
  }

  #store(rule: PathRule, perms: Permissions): void {
    if (rule.segmentWildcards) {
      const isPrefix = rule.path.endsWith("*");
      const pattern = isPrefix ? rule.path.slice(0, -1) : rule.path;
      const parts = pattern.split("/");
      this.#segments.set(rule.path, {
        pattern,
        parts,
        isPrefix,
        firstWildcard: rule.path.indexOf("+"),
        wildcards: parts.filter((part) => part === "+").length,
        perms,
      });
    } else if (rule.prefix) {
      this.#prefixes.set(rule.path.slice(0, -1), perms);
    } else {
      this.#exact.set(rule.path, perms);
    }
  }

  /**
   * Vault's `AllowOperation`: whether `request.operation` is allowed on `request.path`, and
   * whether `sudo` is granted there. The rule that governs the path is found as described on
   * the class; its capabilities must include the operation; for read, create, update and patch,
   * the parameters (`request.data`) must then pass the rule's parameter constraints.
   *
   * With `capabilityCheckOnly` (Vault's `capCheckOnly`), the parameters are not checked:
   * `allowed` says whether the governing rule grants the operation. (Vault leaves `Allowed`
   * unset in that mode and its callers read the capability bits, which `capabilities` gives.)
   */
  allowOperation(request: AclRequest, capabilityCheckOnly = false): AclResult {
    if (this.isRoot) {
      return {
        allowed: true,
        sudo: true,
        isRoot: true,
        capabilities: new Set(ROOT_CAPABILITIES),
        minWrappingTtlMs: 0,
        maxWrappingTtlMs: 0,
      };
    }
    const operation = request.operation;
    const perms = this.#lookup(request.path, operation);
    if (perms === undefined) {
      return { allowed: false, sudo: false, isRoot: false, capabilities: new Set(), minWrappingTtlMs: 0, maxWrappingTtlMs: 0 };
    }

    const bits = perms.bits;
    const result: AclResult = {
      allowed: false,
      sudo: (bits & SUDO) !== 0,
      isRoot: false,
      capabilities: capabilitySet(bits),
      minWrappingTtlMs: perms.minWrappingTtlMs,
      maxWrappingTtlMs: perms.maxWrappingTtlMs,
    };
    const bit = OPERATION_BITS.get(operation) ?? 0;
    if ((bits & DENY) !== 0 || (bits & bit) === 0) return result;
    if (capabilityCheckOnly || !PARAMETER_CHECKED.has(operation)) {
      result.allowed = true;
      return result;
    }
    result.allowed = parametersAllowed(perms, request.data);
    return result;
  }

  /**
   * The capabilities granted on `path` (a Vault path without `/v1/`), as Vault's
   * `ACL.Capabilities` (used by `sys/capabilities`) computes them: the lookup of a list request
   * (see the class), parameters not checked; `{"deny"}` alone when the path is denied or matches
   * no rule. The root ACL has every capability but `deny`.
   */
  capabilities(path: string): Set<Capability> {
    if (this.isRoot) return new Set(ROOT_CAPABILITIES);
    const perms = this.#lookup(path, "list");
    const bits = perms?.bits ?? 0;
    if ((bits & DENY) !== 0 || bits === 0) return new Set<Capability>(["deny"]);
    return capabilitySet(bits);
  }

  /**
   * Whether `capability` is allowed on `path`, parameters not checked: {@link allowOperation}
   * with the operation of the same name (`list` gets the lookup of list requests), and for
   * `sudo` whether the rule governing a read of `path` grants it. Checking `deny` itself always
   * answers `false`.
   */
  allows(path: string, capability: Capability): boolean {
    if (capability === "deny") return false;
    if (this.isRoot) return true;
    if (capability === "sudo") return this.allowOperation({ path, operation: "read" }, true).sudo;
    return this.allowOperation({ path, operation: capability }, true).allowed;
  }

  /**
   * Vault's `hasMountAccess` (used by `sys/internal/ui/mounts`): whether any capability but
   * `deny` is granted on `mountPath` (a mount path such as `secret/`; a missing trailing `/` is
   * added) or on anything under it: the capabilities of the path itself, then any exact or
   * prefix rule whose pattern starts with it and grants something without denying, then any
   * segment-wildcard rule that matches the mount path as far as it goes and grants something.
   */
  hasMountAccess(mountPath: string): boolean {
    if (this.isRoot) return true;
    let path = mountPath;
    while (path.startsWith("/")) path = path.slice(1);
    if (!path.endsWith("/")) path += "/";

    if (!this.capabilities(path).has("deny")) return true;
    const grants = (perms: Permissions): boolean => (perms.bits & DENY) === 0 && (perms.bits & ACCESS) !== 0;
    for (const [key, perms] of this.#exact) if (key.startsWith(path) && grants(perms)) return true;
    for (const [key, perms] of this.#prefixes) if (key.startsWith(path) && grants(perms)) return true;
    return this.#segmentGrantsUnder(path);
  }

  // Vault's CheckAllowedFromNonExactPaths with bareMount: whether a segment-wildcard rule that
  // matches `path` (ending with "/") as far as the path goes grants something without denying.
  #segmentGrantsUnder(path: string): boolean {
    const pathParts = path.split("/");
    for (const rule of this.#segments.values()) {
      const segments: string[] = [];
      for (let i = 0; i < rule.parts.length; i++) {
        const aclPart = rule.parts[i] as string;
        const pathPart = pathParts[i];
        if (pathPart === undefined) break;
        if (aclPart === "+" || aclPart === pathPart) {
          segments.push(pathPart);
        } else if (rule.isPrefix && i === rule.parts.length - 1 && pathPart.startsWith(aclPart)) {
          segments.push(...pathParts.slice(i));
        } else {
          break;
        }
        // The last segment of the mount path (before its trailing "/") is reached.
        if (i === pathParts.length - 2) {
          if (`${segments.join("/")}/`.startsWith(path) && (rule.perms.bits & DENY) === 0 && rule.perms.bits > 0) return true;
          break;
        }
      }
    }
    return false;
  }

  // The permissions of the rule that governs `path` for `operation`, or undefined when none
  // matches (the path lookup of Vault's AllowOperation).
  #lookup(rawPath: string, operation: Operation): Permissions | undefined {
    let path = rawPath;
    while (path.startsWith("/")) path = path.slice(1);

    const exact = this.#exact.get(path);
    if (exact !== undefined) return exact;
    const list = operation === "list";
    if (list) {
      const exactTrimmed = this.#exact.get(path.endsWith("/") ? path.slice(0, -1) : path);
      if (exactTrimmed !== undefined) return exactTrimmed;
    }
    if (list && path.endsWith("/")) {
      const trimmed = this.#candidates(path.slice(0, -1), []);
      const full = this.#candidates(path, []);
      if (trimmed.length === 0 && full.length === 0) return undefined;
      return resolveList([...trimmed, ...full]);
    }
    const candidates = this.#candidates(path, []);
    return candidates.length === 0 ? undefined : highest(candidates).perms;
  }

  // Vault's prefixAndWCCandidatesForPath: the longest matching prefix rule and every matching
  // segment-wildcard rule, appended to `into`.
  #candidates(path: string, into: Candidate[]): Candidate[] {
    for (const prefix of this.#prefixOrder) {
      if (path.startsWith(prefix)) {
        into.push({
          firstWildcard: prefix.length,
          isPrefix: true,
          wildcards: 0,
          pattern: prefix,
          perms: this.#prefixes.get(prefix) as Permissions,
        });
        break;
      }
    }
    if (this.#segments.size === 0) return into;
    const pathParts = path.split("/");
    for (const rule of this.#segments.values()) {
      if (segmentRuleMatches(rule, pathParts)) into.push(rule);
    }
    return into;
  }
}

// Vault's tryMatchWildcardPath (bareMount false): `+` matches any one segment, the empty one
// included; a rule ending with `*` matches when its last part starts the path's segment there.
function segmentRuleMatches(rule: SegmentRule, pathParts: readonly string[]): boolean {
  if (pathParts.length < rule.parts.length) return false;
  if (!rule.isPrefix && pathParts.length !== rule.parts.length) return false;
  const last = rule.parts.length - 1;
  for (let i = 0; i <= last; i++) {
    const aclPart = rule.parts[i] as string;
    const pathPart = pathParts[i] as string;
    if (aclPart === "+" || aclPart === pathPart) continue;
    if (rule.isPrefix && i === last && pathPart.startsWith(aclPart)) continue;
    return false;
  }
  return true;
}

// Vault's wildcardPathDescriptorComparePriority: whether `a` ranks below `b`.
function lowerPriority(a: Candidate, b: Candidate): boolean {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard < b.firstWildcard;
  if (a.isPrefix !== b.isPrefix) return a.isPrefix;
  if (a.wildcards !== b.wildcards) return a.wildcards > b.wildcards;
  if (a.pattern.length !== b.pattern.length) return a.pattern.length < b.pattern.length;
  return a.pattern < b.pattern;
}

// The highest-priority candidate (Vault sorts and takes the last).
function highest(candidates: readonly Candidate[]): Candidate {
  let best = candidates[0] as Candidate;
  for (const candidate of candidates) if (lowerPriority(best, candidate)) best = candidate;
  return best;
}

// Vault's resolveACLPermsForListOp, over the candidates of both forms of a list path: the most
// specific deny wins if it ranks above the most specific rule granting list (or if none does);
// otherwise that rule wins; with neither, the most specific rule overall.
function resolveList(candidates: readonly Candidate[]): Permissions {
  let bestDeny: Candidate | undefined;
  let bestList: Candidate | undefined;
  for (const candidate of candidates) {
    if ((candidate.perms.bits & DENY) !== 0 && (bestDeny === undefined || lowerPriority(bestDeny, candidate))) bestDeny = candidate;
    if ((candidate.perms.bits & BIT.list) !== 0 && (bestList === undefined || lowerPriority(bestList, candidate))) bestList = candidate;
  }
  if (bestDeny !== undefined && (bestList === undefined || lowerPriority(bestList, bestDeny))) return bestDeny.perms;
  if (bestList !== undefined) return bestList.perms;
  return highest(candidates).perms;
}

// The lesser of two TTLs, 0 standing for none.
function lesserNonZero(a: number, b: number): number {
  if (a === 0) return b;
  if (b === 0) return a;
  return Math.min(a, b);
}

function capabilitySet(bits: number): Set<Capability> {
  if ((bits & DENY) !== 0) return new Set<Capability>(["deny"]);
  return new Set(ROOT_CAPABILITIES.filter((capability) => (bits & BIT[capability]) !== 0));
}
