/**
 * The text of the built-in `default` policy: the part of Vault's `default` policy that applies
 * to Egide (a token may look itself up, renew and revoke itself, ask for its own capabilities,
 * and use the general-purpose tools). Vault's entries for features Egide does not have
 * (cubbyhole, response wrapping, leases, identity templating, the UI's resultant ACL) are left
 * out.
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
