import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { auditEntry } from "../audit/audit-entry.js";
import type { EgideContext } from "../egide-context.js";
import { permissionDenied } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";

/**
 * `POST /v1/sys/rotate` (a new encryption key version, then a background rewrap of existing
 * records; Vault requires `update` and `sudo`)
 * and `GET /v1/sys/key-status` (Vault's `term`, `install_time`, `encryptions`, plus every
 * version's state).
 */
export function registerKeyRoutes(app: FastifyInstance, ctx: EgideContext): void {
  const rotate = async (request: FastifyRequest, reply: FastifyReply) => {
    ctx.describe(request, "update", "sys/rotate");
    const { capabilities } = await ctx.capabilities(request, "sys/rotate");
    if (capabilities.has("deny") || !capabilities.has("update") || !capabilities.has("sudo")) throw permissionDenied();
    // The audit row is written in the rotation's own keyring transaction: both commit or neither.
    await ctx.seal.rotate({ audit: auditEntry(request, true, 204, null) });
    request.egide.audited = true;
    // Existing records move to the new version in the background (DEKs only, resumable).
    void ctx.seal.rewrapInBackground();
    return reply.code(204).send();
  };
  app.post("/v1/sys/rotate", rotate);
  app.put("/v1/sys/rotate", rotate);

  app.get("/v1/sys/key-status", async (request) => {
    ctx.describe(request, "read", "sys/key-status");
    await ctx.authorize(request, "sys/key-status", "read");
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
