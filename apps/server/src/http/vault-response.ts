import type { FastifyRequest } from "fastify";

/** Vault's response envelope for a read: `data` with the usual lease and wrapping fields. */
export interface VaultEnvelope<T> {
  request_id: string;
  lease_id: string;
  renewable: boolean;
  lease_duration: number;
  data: T | null;
  wrap_info: null;
  warnings: string[] | null;
  auth: unknown;
}

/** Wraps `data` in Vault's envelope, with the request's id. */
export function vaultResponse<T>(
  request: FastifyRequest,
  data: T | null,
  extra: { warnings?: string[]; auth?: unknown } = {},
): VaultEnvelope<T> {
  return {
    request_id: request.id,
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: extra.warnings && extra.warnings.length > 0 ? extra.warnings : null,
    auth: extra.auth ?? null,
  };
}
