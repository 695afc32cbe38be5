import { badRequest } from "../http/vault-error.js";
import { type JsonObject, field, hasField, parseBoolean, parseInteger } from "../kv/kv-input.js";
import { parsePolicyList, parseSeconds } from "./auth-method-input.js";
import { parseCidrList } from "./cidr-list.js";

/**
 * The token fields of a role or user (Vault's `tokenutil.TokenParams`) that this server
 * enforces. Fields it cannot enforce on a token (`token_bound_cidrs`, `token_num_uses`,
 * `token_period`, batch tokens) are refused when written with a non-default value, never stored
 * and silently ignored.
 */
export interface TokenSettings {
  token_policies: string[];
  /** Seconds; 0: the mount's default TTL. */
  token_ttl: number;
  /** Seconds; 0: the mount's maximum TTL. */
  token_max_ttl: number;
  /** Seconds; 0: none beyond token_max_ttl. */
  token_explicit_max_ttl: number;
  token_no_default_policy: boolean;
  /** Whether the policies were last written through the legacy `policies` field (read back under that name too, as Vault does). */
  legacy_policies: boolean;
}

/** The settings of a role or user that never set any. */
export const DEFAULT_TOKEN_SETTINGS: Readonly<TokenSettings> = Object.freeze({
  token_policies: [],
  token_ttl: 0,
  token_max_ttl: 0,
  token_explicit_max_ttl: 0,
  token_no_default_policy: false,
  legacy_policies: false,
});

/**
 * Applies the token fields present in `body` to `current` (Vault's `ParseTokenFields`: a field
 * left out keeps its value). `token_policies` wins over the legacy `policies`.
 */
export function parseTokenSettings(body: JsonObject, current: Readonly<TokenSettings>): TokenSettings {
  const settings: TokenSettings = { ...current, token_policies: [...current.token_policies] };
  if (hasField(body, "token_policies")) {
    settings.token_policies = parsePolicyList(field(body, "token_policies"), "token_policies");
    settings.legacy_policies = false;
  } else if (hasField(body, "policies")) {
    settings.token_policies = parsePolicyList(field(body, "policies"), "policies");
    settings.legacy_policies = true;
  }
  if (hasField(body, "token_ttl")) settings.token_ttl = parseSeconds(field(body, "token_ttl"), "token_ttl");
  else if (hasField(body, "ttl")) settings.token_ttl = parseSeconds(field(body, "ttl"), "ttl");
  if (hasField(body, "token_max_ttl")) settings.token_max_ttl = parseSeconds(field(body, "token_max_ttl"), "token_max_ttl");
  else if (hasField(body, "max_ttl")) settings.token_max_ttl = parseSeconds(field(body, "max_ttl"), "max_ttl");
  if (hasField(body, "token_explicit_max_ttl")) {
    settings.token_explicit_max_ttl = parseSeconds(field(body, "token_explicit_max_ttl"), "token_explicit_max_ttl");
  }
  if (hasField(body, "token_no_default_policy")) {
    settings.token_no_default_policy = parseBoolean(field(body, "token_no_default_policy"), "token_no_default_policy");
  }
  refuseUnsupported(body);
  if (settings.token_max_ttl > 0 && settings.token_ttl > settings.token_max_ttl) {
    throw badRequest("'token_ttl' cannot be greater than 'token_max_ttl'");
  }
  return settings;
}

// Settings this server's tokens cannot carry: accepted only with the value that changes nothing.
function refuseUnsupported(body: JsonObject): void {
  for (const name of ["token_bound_cidrs", "bound_cidrs"]) {
    if (hasField(body, name) && parseCidrList(field(body, name), name).length > 0) {
      throw badRequest(`${name} is not supported by this server: its tokens cannot be bound to client addresses`);
    }
  }
  for (const name of ["token_num_uses", "num_uses_token"]) {
    if (hasField(body, name) && parseInteger(field(body, name), name) !== 0) {
      throw badRequest(`${name} is not supported by this server: its tokens cannot be limited to a number of uses`);
    }
  }
  for (const name of ["token_period", "period"]) {
    if (hasField(body, name) && parseSeconds(field(body, name), name) !== 0) {
      throw badRequest(`${name} is not supported by this server: periodic tokens are not implemented`);
    }
  }
  if (hasField(body, "token_type")) {
    const type = field(body, "token_type");
    if (type !== "" && type !== "default" && type !== "service" && type !== "default-service") {
      throw badRequest('token_type: this server issues service tokens only ("default" or "service")');
    }
  }
}

/** The token fields of a role or user read, as Vault answers them. */
export function tokenSettingsData(settings: TokenSettings): Record<string, unknown> {
  return {
    token_bound_cidrs: [],
    token_explicit_max_ttl: settings.token_explicit_max_ttl,
    token_max_ttl: settings.token_max_ttl,
    token_no_default_policy: settings.token_no_default_policy,
    token_num_uses: 0,
    token_period: 0,
    token_policies: settings.token_policies,
    token_ttl: settings.token_ttl,
    token_type: "default",
    ...(settings.legacy_policies ? { policies: settings.token_policies } : {}),
  };
}
