/**
 * The text of the built-in `default` policy: the part of Vault's `default` policy that applies
 * to Egide (a token may look itself up, renew and revoke itself, ask for its own capabilities,
 * wrap values, look up and unwrap response-wrapping tokens, and use the general-purpose tools).
 * Vault's entries for features Egide does not have (cubbyhole, leases, identity templating, the
 * UI's resultant ACL) are left out.
 *
 * `default` exists without ever being written; writing it replaces this text, and it cannot be
 * deleted.
 */
export const DEFAULT_POLICY_HCL = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}
path "sys/tools/random" {
    capabilities = ["update"]
}
path "sys/tools/random/*" {
    capabilities = ["update"]
}
`;

/**
 * The text of the built-in `response-wrapping` policy, held by response-wrapping tokens alone:
 * Vault's, without its cubbyhole entry (a wrapping token's storage is reached only through the
 * `sys/wrapping/*` endpoints). It allows unwrapping (and looking up) and nothing else.
 */
export const RESPONSE_WRAPPING_POLICY_HCL = `path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

path "sys/wrapping/lookup" {
    capabilities = ["update"]
}
`;
