import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { auditEntry } from "../audit/audit-entry.js";
import type { EgideContext } from "../egide-context.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { vaultResponse } from "../http/vault-response.js";

/**
 * `POST /v1/sys/rotate` (a new encryption key version, then a background rewrap of existing
 * records; Vault requires `update` and `sudo`)
 * and `GET /v1/sys/key-status` (Vault's `term`, `install_time`, `encryptions`, plus every
 * version's state).
 */
export function registerKeyRoutes(app: FastifyInstance, ctx: EgideContext): void {
  const rotateSpec: VaultRouteSpec = { template: "sys/rotate", access: "acl", operation: "update", sudo: true };
  const rotate = async (request: FastifyRequest, reply: FastifyReply) => {
    // The audit row is written in the rotation's own keyring transaction: both commit or neither.
    await ctx.seal.rotate({ audit: auditEntry(request, true, 204, null) });
    request.egide.audited = true;
    // Existing records move to the new version in the background (DEKs only, resumable).
    void ctx.seal.rewrapInBackground();
    return reply.code(204).send();
  };
  app.post("/v1/sys/rotate", { config: { vault: rotateSpec } }, rotate);
  app.put("/v1/sys/rotate", { config: { vault: rotateSpec } }, rotate);

  app.get("/v1/sys/key-status", { config: { vault: { template: "sys/key-status", access: "acl" } } }, async (request) => {
    const status = ctx.seal.keyStatus();
    const data = {
      term: status.term,
      install_time: status.installTime,
      encryptions: status.encryptions,
      rotate_after_encryptions: status.rotateAfterEncryptions,
      versions: status.versions.map((v) => ({ version: v.version, state: v.state, created_time: v.createdAt, encryptions: v.encryptions })),
    };
    return { ...data, ...vaultResponse(request, data) };
  });
}
