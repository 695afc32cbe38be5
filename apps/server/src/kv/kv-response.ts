import { VaultError } from "../http/vault-error.js";

/**
 * What a KV operation answers, independent of HTTP plumbing:
 *
 * - 200 with `data` (the envelope's `data`) and optional warnings;
 * - 204, nothing;
 * - 404 with `data: null` (Vault's `{"errors": []}`), or 404 with `data` (Vault answers a
 *   deleted or destroyed version with 404 and the version's metadata in the envelope).
 *
 * Failures (400, 404, …) are thrown as `VaultError`s.
 */
export type KvResponse = { status: 200; data: unknown; warnings?: string[] } | { status: 204 } | { status: 404; data: unknown };

/** 200 with `data`. */
export const ok = (data: unknown, warnings?: string[]): KvResponse =>
  warnings && warnings.length > 0 ? { status: 200, data, warnings } : { status: 200, data };
/** 204. */
export const noContent = (): KvResponse => ({ status: 204 });
/** 404; with `data` for a deleted or destroyed version. */
export const missing = (data: unknown = null): KvResponse => ({ status: 404, data });

/**
 * A 404 thrown from inside a mutation (so its transaction rolls back) that Vault answers with
 * a body: `data` is the envelope's `data`. Handled like any 404 `VaultError` (`{"errors": []}`)
 * by code that does not know it.
 */
export class KvNotFoundError extends VaultError {
  readonly data: unknown;

  constructor(data: unknown) {
    super(404);
    this.name = "KvNotFoundError";
    this.data = data;
  }
}
