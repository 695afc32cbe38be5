import { checkServerIdentity, type ConnectionOptions } from "node:tls";
import type { ResolvedPostgresOptions } from "./postgres-options.js";

/** The TLS settings of one connection attempt: `false` for plain text. */
export type PgSsl = false | ConnectionOptions;

/**
 * The connection attempts an `sslmode` stands for, in libpq's order. `pg` parses `sslmode`
 * its own way (it verifies certificates under `require`, for one), so every mode is mapped to an
 * explicit `ssl` object here:
 *
 * - `disable`: plain text only.
 * - `allow`: plain text, then TLS without verification if the server insists.
 * - `prefer`: TLS without verification, then plain text if the server has no TLS.
 * - `require`: TLS without verification, unless a root certificate is given, in which case
 *   libpq verifies the chain as for `verify-ca`.
 * - `verify-ca`: TLS, the chain must lead to `ssl_root_cert` (or the system CAs); any host name.
 * - `verify-full`: as `verify-ca`, and the certificate must name the host.
 */
export function sslAttempts(options: ResolvedPostgresOptions): PgSsl[] {
  const ca = options.sslRootCertPem;
  const unverified: ConnectionOptions = { rejectUnauthorized: false };
  const chainOnly: ConnectionOptions = { rejectUnauthorized: true, checkServerIdentity: () => undefined, ...(ca ? { ca } : {}) };
  // pg starts TLS on an open socket and passes no host, so Node would check the certificate
  // against "localhost" for an IP address: check against the configured host explicitly.
  const full: ConnectionOptions = {
    rejectUnauthorized: true,
    checkServerIdentity: (_servername, certificate) => checkServerIdentity(options.host, certificate),
    ...(ca ? { ca } : {}),
  };
  switch (options.sslMode) {
    case "disable":
      return [false];
    case "allow":
      return [false, unverified];
    case "prefer":
      return [unverified, false];
    case "require":
      return [ca ? chainOnly : unverified];
    case "verify-ca":
      return [chainOnly];
    case "verify-full":
      return [full];
  }
}

/** Whether a failed attempt should fall through to the next one (libpq's allow/prefer). */
export function isSslNegotiationFailure(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  // prefer → the server has no TLS; allow → the server's pg_hba.conf requires TLS.
  return /does not support SSL|no encryption|SSL off|hostssl/i.test(text);
}
