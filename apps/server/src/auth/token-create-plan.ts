import { assertAssignablePolicies } from "./non-assignable-policies.js";
import { badRequest } from "../http/vault-error.js";
import type { JsonObject } from "../kv/kv-input.js";
import { flag, optionalDurationMs, policyNames, tokenDisplayName, tokenMeta } from "./token-input.js";
import type { TokenRole } from "./token-role.js";
import { numUses } from "./token-role.js";
import type { NewToken, TokenEntry } from "./token-store.js";

/** What a token creation is decided from. */
export interface TokenCreateInput {
  body: JsonObject;
  /** The calling token (the parent). */
  parent: TokenEntry;
  isRoot: boolean;
  /** Whether the caller holds sudo on the creation path (always for root). */
  sudo: boolean;
  /** Which endpoint: `create`, `create-orphan`, or `create/<role>` (then `role` is set). */
  endpoint: "create" | "create-orphan" | "role";
  role: TokenRole | null;
  defaultTtlMs: number;
  maxTtlMs: number;
}

/**
 * Decides the token a creation request makes, as Vault's `handleCreateCommon`: the policies
 * (subset of the caller's unless sudo; within a role's allowed and outside its disallowed
 * policies), orphan-ness, `num_uses`, `period`, `explicit_max_ttl` and the TTL granted (whole
 * seconds, capped by the explicit maximum and the server's maximum, with Vault's warnings).
 * Throws Vault's 400s. Two deliberate differences: a TTL of 0 is the default TTL, never
 * "forever", and a child that inherits its policies from a root caller does not inherit `root`.
 */
export function planTokenCreate(input: TokenCreateInput): { token: NewToken; warnings: string[] } {
  const { body, parent, sudo, role } = input;
  const warnings: string[] = [];
  if ((parent.numUses ?? 0) !== 0) throw badRequest("restricted use token cannot generate child tokens");
  if (body.id !== undefined && body.id !== null && body.id !== "") throw badRequest("custom token IDs are not supported by this server");
  if (body.entity_alias !== undefined && body.entity_alias !== null && body.entity_alias !== "") {
    throw badRequest(
      role ? "entity aliases are not supported by this server" : "'entity_alias' is only allowed in combination with token role",
    );
  }
  const type = body.type ?? "";
  if (type === "batch") throw badRequest("batch tokens are not supported by this server");
  if (type !== "" && type !== "service") throw badRequest("invalid 'token_type' value");
  let renewable = flag(body, "renewable", true);
  let uses = body.num_uses === undefined || body.num_uses === null || body.num_uses === "" ? 0 : numUses(body.num_uses, "num_uses");
  let path = `auth/token/${input.endpoint === "role" ? `create/${role?.name}` : input.endpoint}`;
  if (role) {
    if (!role.renewable) renewable = false;
    if (role.tokenNumUses > 0 && (uses === 0 || role.tokenNumUses < uses)) uses = role.tokenNumUses;
    if (role.pathSuffix !== "") path = `${path}/${role.pathSuffix}`;
  }

  const policies = tokenPolicies(input);
  assertAssignablePolicies(policies);
  if (policies.includes("root") && !parent.policies.includes("root")) {
    throw badRequest("root tokens may not be created without parent token being root");
  }

  let orphan: boolean;
  if (role) orphan = role.orphan;
  else if (flag(body, "no_parent")) {
    if (!sudo) throw badRequest("root or sudo privileges required to create orphan token");
    orphan = true;
  } else orphan = input.endpoint === "create-orphan";

  let explicitMs = second(optionalDurationMs(body.explicit_max_ttl, "explicit_max_ttl"));
  let periodMs = second(optionalDurationMs(body.period, "period"));
  if (periodMs > 0 && !sudo) throw badRequest("root or sudo privileges required to create periodic token");
  const requestedMs = second(optionalDurationMs(body.ttl ?? body.lease, "ttl"));
  if (role) {
    const roleExplicit = role.tokenExplicitMaxTtlS * 1000;
    if (roleExplicit > 0) {
      if (explicitMs > 0) {
        explicitMs = Math.min(explicitMs, roleExplicit);
        warnings.push(
          `Explicit max TTL specified both during creation call and in role; using the lesser value of ${explicitMs / 1000} seconds`,
        );
      } else explicitMs = roleExplicit;
    }
    const rolePeriod = role.tokenPeriodS * 1000;
    if (rolePeriod > 0) {
      if (periodMs > 0) {
        periodMs = Math.min(periodMs, rolePeriod);
        warnings.push(`Period specified both during creation call and in role; using the lesser value of ${periodMs / 1000} seconds`);
      } else periodMs = rolePeriod;
    }
  }
  // Refused rather than stored: an explicit maximum the server would not honour.
  if (explicitMs > input.maxTtlMs) {
    throw badRequest(`explicit_max_ttl must not exceed the server's max_lease_ttl (${input.maxTtlMs / 1000}s)`);
  }

  // Vault's framework.CalculateTTL with the creation time as start.
  const maxMs = explicitMs > 0 ? Math.min(explicitMs, input.maxTtlMs) : input.maxTtlMs;
  let ttlMs: number;
  if (periodMs > 0) {
    if (periodMs > maxMs) {
      warnings.push(
        `period of "${periodMs / 1000}s" exceeded the effective max_ttl of "${maxMs / 1000}s"; period value is capped accordingly`,
      );
      periodMs = maxMs;
    }
    ttlMs = periodMs;
  } else {
    ttlMs = requestedMs > 0 ? requestedMs : second(input.defaultTtlMs);
    if (ttlMs > maxMs) {
      warnings.push(`TTL of "${ttlMs / 1000}s" exceeded the effective max_ttl of "${maxMs / 1000}s"; TTL value is capped accordingly`);
      ttlMs = maxMs;
    }
  }
  ttlMs = Math.max(1000, second(ttlMs));

  return {
    token: {
      policies,
      displayName: tokenDisplayName(body.display_name),
      meta: tokenMeta(body.meta),
      ttlMs,
      maxTtlMs: explicitMs,
      renewable,
      parentAccessor: orphan ? null : parent.accessor,
      ...(periodMs > 0 ? { periodMs } : {}),
      ...(uses > 0 ? { numUses: uses } : {}),
      ...(role ? { role: role.name } : {}),
      path,
    },
    warnings,
  };
}

// The policy set, by Vault's rules (see handleCreateCommon's switch).
function tokenPolicies(input: TokenCreateInput): string[] {
  const { body, parent, sudo, role } = input;
  const noDefault = flag(body, "no_default_policy");
  const requested = policyNames(body.policies, "policies", true);
  const parentPolicies = [...new Set(parent.policies)];
  let policies: string[];
  let addDefault = false;
  if (role && (role.allowedPolicies.length > 0 || role.disallowedPolicies.length > 0)) {
    const localDefault = !noDefault && !role.tokenNoDefaultPolicy && !role.disallowedPolicies.includes("default");
    const withDefault = (names: string[]) => sanitize(localDefault ? [...names, "default"] : names);
    policies = requested.length > 0 ? withDefault(requested) : [];
    if (role.allowedPolicies.length > 0) {
      const allowed = withDefault(role.allowedPolicies);
      if (policies.length === 0) policies = allowed;
      else if (!policies.every((p) => allowed.includes(p))) {
        throw badRequest(
          `token policies (${quoted(policies)}) must be subset of the role's allowed policies (${quoted(allowed)}) or glob policies ([])`,
        );
      }
    } else if (policies.length === 0) {
      policies = withDefault(inherited(parentPolicies));
    }
    for (const p of policies) if (role.disallowedPolicies.includes(p)) throw badRequest(`token policy "${p}" is disallowed by this role`);
  } else if (requested.length === 0) {
    policies = inherited(parentPolicies);
    // A root caller's child is not made root by omission: it gets default (see planTokenCreate).
    addDefault = parent.policies.includes("root") && !noDefault;
  } else if (!sudo) {
    const held = sanitize(parentPolicies);
    const extra = sanitize(requested).filter((p) => !held.includes(p) && !(p === "default" && held.includes("root")));
    if (extra.length > 0) throw badRequest(`child policies must be subset of parent: ${extra.join(", ")} not held by the caller`);
    policies = requested;
    addDefault = !noDefault && parentPolicies.includes("default");
  } else {
    policies = requested;
    addDefault = !noDefault;
  }
  let result = sanitize(addDefault ? [...policies, "default"] : policies);
  if (noDefault) result = result.filter((p) => p !== "default");
  return result;
}

function inherited(parentPolicies: string[]): string[] {
  return parentPolicies.filter((p) => p !== "root");
}

// Vault's SanitizePolicies: root alone wins over everything else; no duplicates; sorted.
function sanitize(names: string[]): string[] {
  if (names.includes("root")) return ["root"];
  return [...new Set(names)].sort();
}

function quoted(names: string[]): string {
  return `[${names.map((n) => JSON.stringify(n)).join(" ")}]`;
}

function second(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}
