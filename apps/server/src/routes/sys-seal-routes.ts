import type { UnsealKeySource } from "@egide/crypto-envelope";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { auditEntry } from "../audit/audit-entry.js";
import type { TokenStore } from "../auth/token-store.js";
import type { EgideContext } from "../egide-context.js";
import { initializeInstallation } from "../seal/initialize-installation.js";
import { badRequest } from "../http/vault-error.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { bodyObject } from "../kv/kv-input.js";
import type { MountTable } from "../mounts/mount-table.js";
import { SERVER_VERSION } from "../server-version.js";

/** What the seal routes need beyond the context. */
export interface SealRouteOptions {
  tokens: TokenStore;
  mounts: MountTable;
  /** Auto-unseal source: init then writes the key file (if a file) and stays unsealed. */
  autoUnseal: UnsealKeySource | undefined;
  startedAt: Date;
}

/** Vault's seal status body (`/v1/sys/seal-status`, `/v1/sys/unseal`). */
export function sealStatusBody(ctx: EgideContext) {
  const status = ctx.seal.status();
  return {
    type: status.type,
    initialized: status.initialized,
    sealed: status.sealed,
    t: status.t,
    n: status.n,
    progress: status.progress,
    nonce: status.nonce,
    version: SERVER_VERSION,
    build_date: "",
    migration: false,
    recovery_seal: false,
    storage_type: ctx.adapter.type,
  };
}

/** The largest body `sys/init` and `sys/unseal` read: they are unauthenticated, and their bodies are small. */
export const UNAUTHENTICATED_BODY_LIMIT = 4096;

/** `/v1/sys/init`, `/v1/sys/unseal`, `/v1/sys/seal`, `/v1/sys/seal-status`. */
export function registerSealRoutes(app: FastifyInstance, ctx: EgideContext, options: SealRouteOptions): void {
  const open = (template: string) => ({
    config: { vault: { template, access: "public" } satisfies VaultRouteSpec },
    bodyLimit: UNAUTHENTICATED_BODY_LIMIT,
  });
  const status = (template: string) => ({ config: { vault: { template, access: "public", operation: "read" } satisfies VaultRouteSpec } });

  app.get("/v1/sys/init", status("sys/init"), async () => {
    if (!ctx.seal.initialized) await ctx.seal.refresh();
    return { initialized: ctx.seal.initialized };
  });

  const init = async (request: FastifyRequest) => {
    const body = bodyObject(request.body);
    for (const unsupported of ["pgp_keys", "root_token_pgp_key", "recovery_shares", "recovery_threshold", "recovery_pgp_keys"]) {
      const value = body[unsupported];
      if (value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0) && value !== "" && value !== 0) {
        throw badRequest(`${unsupported} is not supported by this server`);
      }
    }
    const shares = integerField(body, "secret_shares", options.autoUnseal ? 1 : 5);
    const threshold = integerField(body, "secret_threshold", options.autoUnseal ? 1 : 3);
    if (options.autoUnseal && (shares !== 1 || threshold !== 1)) {
      throw badRequest(
        "with auto-unseal configured ([seal] unseal_key_file or unseal_key_env), secret_shares and secret_threshold must be 1",
      );
    }
    if (!ctx.seal.initialized) await ctx.seal.refresh();
    if (ctx.seal.initialized) throw badRequest("Vault is already initialized");
    const { keys, rootToken, warnings } = await initializeInstallation(ctx, options, request, { shares, threshold });
    const body200 = {
      keys: keys.map((k) => k.toString("hex")),
      keys_base64: keys.map((k) => k.toString("base64")),
      root_token: rootToken,
      ...(warnings.length > 0 ? { warnings } : {}),
    };
    for (const key of keys) key.fill(0);
    return body200;
  };
  app.put("/v1/sys/init", open("sys/init"), init);
  app.post("/v1/sys/init", open("sys/init"), init);

  const unseal = async (request: FastifyRequest) => {
    const body = bodyObject(request.body);
    if (!ctx.seal.initialized) await ctx.seal.refresh();
    if (!ctx.seal.initialized) throw badRequest("Vault is not initialized");
    if (body.reset === true) {
      ctx.seal.resetUnseal();
      return sealStatusBody(ctx);
    }
    if (typeof body.key !== "string" || body.key === "")
      throw badRequest("'key' must be specified in request body as JSON, or 'reset' set to true");
    await ctx.seal.unseal(body.key);
    // A rewrap a seal or restart interrupted resumes from its stored progress.
    if (!ctx.seal.sealed) void ctx.seal.rewrapInBackground();
    return sealStatusBody(ctx);
  };
  app.put("/v1/sys/unseal", open("sys/unseal"), unseal);
  app.post("/v1/sys/unseal", open("sys/unseal"), unseal);

  // Vault requires sudo (and update) on sys/seal.
  const sealSpec: VaultRouteSpec = { template: "sys/seal", access: "acl", operation: "update", sudo: true };
  const seal = async (request: FastifyRequest, reply: FastifyReply) => {
    // The audit row is written before sealing, so a failure to audit leaves the server unsealed.
    await ctx.adapter.audit.append(auditEntry(request, true, 204, null));
    request.egide.audited = true;
    ctx.seal.seal();
    return reply.code(204).send();
  };
  app.put("/v1/sys/seal", { config: { vault: sealSpec } }, seal);
  app.post("/v1/sys/seal", { config: { vault: sealSpec } }, seal);

  app.get("/v1/sys/seal-status", status("sys/seal-status"), async () => {
    if (!ctx.seal.initialized) await ctx.seal.refresh();
    return sealStatusBody(ctx);
  });
}

function integerField(body: Record<string, unknown>, name: string, fallback: number): number {
  const value = body[name] ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value)) throw badRequest(`${name} must be a whole number`);
  return value;
}
