/** The keys of Vault's response envelope, sorted (as `Object.keys(body).sort()` gives them). */
export const VAULT_ENVELOPE_KEYS: readonly string[] = [
  "auth",
  "data",
  "lease_duration",
  "lease_id",
  "renewable",
  "request_id",
  "warnings",
  "wrap_info",
];

/**
 * The keys of the `data` of a token lookup (`auth/token/lookup`, `lookup-self`,
 * `lookup-accessor`), sorted, as Vault's token store answers them.
 */
export const TOKEN_LOOKUP_KEYS: readonly string[] = [
  "accessor",
  "creation_time",
  "creation_ttl",
  "display_name",
  "entity_id",
  "expire_time",
  "explicit_max_ttl",
  "id",
  "issue_time",
  "meta",
  "num_uses",
  "orphan",
  "path",
  "policies",
  "renewable",
  "ttl",
  "type",
];
