import type { FastifyRequest } from "fastify";

/** The response wrapping a request asked for, as the request pipeline accepted it. */
export interface RequestWrapping {
  /** The TTL the client asked for (`X-Vault-Wrap-TTL`), in ms: what policies' wrapping TTLs are checked against. */
  readonly requestedMs: number;
  /** The wrapping token's TTL, in ms: the requested TTL capped at the server's maximum. */
  readonly ttlMs: number;
  /** Whether the response was wrapped already (by its handler, or by the wrapping hook). */
  done: boolean;
}

// Kept beside the request rather than in `request.egide`: only the request pipeline sets it,
// and only the wrapping hook and the wrapping routes read it.
const wrappings = new WeakMap<FastifyRequest, RequestWrapping>();

/** Records that `request` asked for its response to be wrapped. */
export function setRequestWrapping(request: FastifyRequest, requestedMs: number, ttlMs: number): void {
  wrappings.set(request, { requestedMs, ttlMs, done: false });
}

/** The wrapping `request` asked for, or undefined when it did not. */
export function requestWrapping(request: FastifyRequest): RequestWrapping | undefined {
  return wrappings.get(request);
}
