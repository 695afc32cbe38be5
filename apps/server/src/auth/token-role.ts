import { assertAssignablePolicies } from "./non-assignable-policies.js";
import { badRequest } from "../http/vault-error.js";
import { bodyObject, hasField, parseBoolean } from "../kv/kv-input.js";
import { canonicalPolicyName } from "../policy/policy.js";
import { durationSeconds, policyNames } from "./token-input.js";

/** A token role (Vault's `tsRoleEntry`), as stored. Durations are whole seconds, as Vault's `TypeDurationSecond`. */
export interface TokenRole {
  name: string;
  allowedPolicies: string[];
  disallowedPolicies: string[];
  orphan: boolean;
  renewable: boolean;
  pathSuffix: string;
  /** The deprecated `period` as written (kept for reads); {@link TokenRole.tokenPeriodS} is what applies. */
  periodS: number;
  tokenPeriodS: number;
  /** The deprecated `explicit_max_ttl` as written; {@link TokenRole.tokenExplicitMaxTtlS} applies. */
  explicitMaxTtlS: number;
  tokenExplicitMaxTtlS: number;
  tokenNoDefaultPolicy: boolean;
  tokenNumUses: number;
  tokenType: "default-service" | "service";
}

/** The longest role name and path suffix accepted. */
export const MAX_ROLE_NAME_LENGTH = 128;

/**
 * Whether `name` is a role name (Vault's `GenericNameRegex`: word characters, `-` and `.`,
 * starting and ending with a word character). Checked character by character: no regular
 * expression runs on client input here.
 */
export function isRoleName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_ROLE_NAME_LENGTH) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name[i] as string;
    const word = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c === "_";
    const edge = i === 0 || i === name.length - 1;
    if (!word && (edge || (c !== "-" && c !== "."))) return false;
  }
  return true;
}

/**
 * Applies a role write (`POST auth/token/roles/:role_name`) to `existing` (or to a new role),
 * as Vault's `tokenStoreRoleCreateUpdate`: on create an absent field takes its default, on
 * update it keeps its value; `token_period`/`token_explicit_max_ttl` win over their deprecated
 * names (with a warning when both are given). Settings this server cannot enforce (globs,
 * CIDR bindings, entity aliases, batch tokens) are refused rather than stored and ignored.
 */
export function applyRoleWrite(
  name: string,
  existing: TokenRole | null,
  rawBody: unknown,
  serverMaxTtlMs: number,
): { role: TokenRole; warnings: string[] } {
  const body = bodyObject(rawBody);
  const warnings: string[] = [];
  const role: TokenRole = existing
    ? { ...existing }
    : {
        name,
        allowedPolicies: [],
        disallowedPolicies: [],
        orphan: false,
        renewable: true,
        pathSuffix: "",
        periodS: 0,
        tokenPeriodS: 0,
        explicitMaxTtlS: 0,
        tokenExplicitMaxTtlS: 0,
        tokenNoDefaultPolicy: false,
        tokenNumUses: 0,
        tokenType: "default-service",
      };
  const given = (field: string) => hasField(body, field) && body[field] !== null;
  for (const field of ["allowed_policies_glob", "disallowed_policies_glob", "bound_cidrs", "token_bound_cidrs", "allowed_entity_aliases"]) {
    if (given(field) && policyNames(body[field], field, false).length > 0) {
      throw badRequest(`${field} is not supported by this server`);
    }
  }
  if (given("orphan")) role.orphan = parseBoolean(body.orphan, "orphan");
  if (given("renewable")) role.renewable = parseBoolean(body.renewable, "renewable");
  if (given("path_suffix")) role.pathSuffix = pathSuffix(body.path_suffix);
  if (given("allowed_policies")) {
    role.allowedPolicies = sanitize(policyNames(body.allowed_policies, "allowed_policies", true));
    assertAssignablePolicies(role.allowedPolicies);
  }
  if (given("disallowed_policies")) role.disallowedPolicies = sanitize(policyNames(body.disallowed_policies, "disallowed_policies", true));
  if (given("token_no_default_policy")) role.tokenNoDefaultPolicy = parseBoolean(body.token_no_default_policy, "token_no_default_policy");
  if (given("token_num_uses")) role.tokenNumUses = numUses(body.token_num_uses, "token_num_uses");
  if (given("token_type")) role.tokenType = tokenType(body.token_type);

  if (given("token_period")) {
    role.tokenPeriodS = durationSeconds(body.token_period, "token_period");
    role.periodS = 0;
    if (given("period")) warnings.push("Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value");
  } else if (given("period")) {
    role.periodS = durationSeconds(body.period, "period");
    role.tokenPeriodS = role.periodS;
  }
  if (given("token_explicit_max_ttl")) {
    role.tokenExplicitMaxTtlS = durationSeconds(body.token_explicit_max_ttl, "token_explicit_max_ttl");
    role.explicitMaxTtlS = 0;
    if (given("explicit_max_ttl")) {
      warnings.push("Both 'token_explicit_max_ttl' and deprecated 'explicit_max_ttl' value supplied, ignoring the deprecated value");
    }
  } else if (given("explicit_max_ttl")) {
    role.explicitMaxTtlS = durationSeconds(body.explicit_max_ttl, "explicit_max_ttl");
    role.tokenExplicitMaxTtlS = role.explicitMaxTtlS;
  }
  if (role.tokenExplicitMaxTtlS * 1000 > serverMaxTtlMs) {
    warnings.push(
      `Given explicit max TTL of ${role.tokenExplicitMaxTtlS} is greater than system/mount allowed value of ${serverMaxTtlMs / 1000} seconds; until this is fixed attempting to create tokens against this role will result in an error`,
    );
  }
  return { role, warnings };
}

/** The role as Vault's `GET auth/token/roles/:role_name` answers it. */
export function roleData(role: TokenRole): Record<string, unknown> {
  return {
    allowed_entity_aliases: [],
    allowed_policies: role.allowedPolicies,
    allowed_policies_glob: [],
    disallowed_policies: role.disallowedPolicies,
    disallowed_policies_glob: [],
    explicit_max_ttl: role.explicitMaxTtlS,
    name: role.name,
    orphan: role.orphan,
    path_suffix: role.pathSuffix,
    period: role.periodS,
    renewable: role.renewable,
    token_explicit_max_ttl: role.tokenExplicitMaxTtlS,
    token_no_default_policy: role.tokenNoDefaultPolicy,
    token_period: role.tokenPeriodS,
    token_type: role.tokenType,
    ...(role.tokenNumUses > 0 ? { token_num_uses: role.tokenNumUses } : {}),
  };
}

/** A `num_uses`-like field: a non-negative integer (numbers or numeric strings, as Vault's `TypeInt`). */
export function numUses(value: unknown, name: string): number {
  const n = typeof value === "string" && /^-?\d{1,15}$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) throw badRequest(`${name} must be an integer`);
  if (n < 0) throw badRequest("number of uses cannot be negative");
  return n;
}

// Vault's policyutil.SanitizePolicies without adding default: lower case, no duplicates, sorted
// (names that are not valid policy names are refused by canonicalPolicyName).
function sanitize(names: string[]): string[] {
  return [...new Set(names.filter((n) => n !== "").map((n) => canonicalPolicyName(n)))].sort();
}

function pathSuffix(value: unknown): string {
  if (typeof value !== "string") throw badRequest("path_suffix must be a string");
  if (value === "") return "";
  if (!isRoleName(value) || value.length < 3) {
    throw badRequest("given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w");
  }
  if (value.includes("..")) throw badRequest("error registering path suffix: path cannot contain parent references");
  return value;
}

function tokenType(value: unknown): TokenRole["tokenType"] {
  switch (value) {
    case "":
    case "default":
    case "default-service":
      return "default-service";
    case "service":
      return "service";
    case "batch":
    case "default-batch":
      throw badRequest("batch tokens are not supported by this server");
    default:
      throw badRequest(`invalid 'token_type' value ${JSON.stringify(String(value).slice(0, 64))}`);
  }
}
