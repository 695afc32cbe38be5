import type { FastifyRequest } from "fastify";

/**
 * The client token of a request, from `X-Vault-Token` (Vault clients), `X-Egide-Token`, or
 * `Authorization: Bearer …`, in that order; `undefined` when none is given.
 */
export function requestToken(request: FastifyRequest): string | undefined {
  const vault = request.headers["x-vault-token"];
  if (typeof vault === "string" && vault !== "") return vault;
  const egide = request.headers["x-egide-token"];
  if (typeof egide === "string" && egide !== "") return egide;
  const authorization = request.headers.authorization;
  if (typeof authorization === "string") {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (match) return match[1];
  }
  return undefined;
}
