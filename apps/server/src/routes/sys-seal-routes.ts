import { writeUnsealKeyFile } from "@egide/crypto-envelope";
import type { UnsealKeySource } from "@egide/crypto-envelope";
import type { Transaction } from "@egide/storage-core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { auditEntry } from "../audit/audit-entry.js";
import type { TokenStore } from "../auth/token-store.js";
import type { EgideContext } from "../egide-context.js";
import { badRequest, permissionDenied } from "../http/vault-error.js";
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
    storage_type: ctx.raw.type,
  };
}

/**
 * Initialises the installation (Vault's `PUT /v1/sys/init`): Shamir shares of a new unseal
 * key, the root token, and the default `secret/` KV v2 mount. Returns the shares and the root
 * token, once. The installation stays sealed afterwards unless auto-unseal is configured.
 */
export async function initializeInstallation(
  ctx: EgideContext,
  options: SealRouteOptions,
  request: FastifyRequest | undefined,
  scheme: { shares: number; threshold: number },
): Promise<{ keys: Buffer[]; rootToken: string }> {
  const { shares } = await ctx.seal.initialize(scheme);
  try {
    for (const share of shares.slice(0, scheme.threshold)) await ctx.seal.unseal(share);
    const create = async (tx: Transaction) =>
      (await options.tokens.create(tx, { policies: ["root"], displayName: "root", ttlMs: 0, maxTtlMs: 0, renewable: false, parentAccessor: null })).token;
    const rootToken = request ? await ctx.mutate(request, 200, create) : await ctx.storage.transaction(create);
    await options.mounts.ensureDefault();
    if (options.autoUnseal && "file" in options.autoUnseal && shares[0]) await writeUnsealKeyFile(options.autoUnseal.file, shares[0]);
    if (!options.autoUnseal) ctx.seal.seal();
    return { keys: shares, rootToken };
  } catch (error) {
    for (const share of shares) share.fill(0);
    throw error;
  }
}

/** `/v1/sys/init`, `/v1/sys/unseal`, `/v1/sys/seal`, `/v1/sys/seal-status`. */
export function registerSealRoutes(app: FastifyInstance, ctx: EgideContext, options: SealRouteOptions): void {
  app.get("/v1/sys/init", async () => {
    if (!ctx.seal.initialized) await ctx.seal.refresh();
    return { initialized: ctx.seal.initialized };
  });

  const init = async (request: FastifyRequest) => {
    ctx.describe(request, "update", "sys/init");
    const body = (request.body ?? {}) as Record<string, unknown>;
    for (const unsupported of ["pgp_keys", "root_token_pgp_key", "recovery_shares", "recovery_threshold", "recovery_pgp_keys"]) {
      const value = body[unsupported];
      if (value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0) && value !== "" && value !== 0) {
        throw badRequest(`${unsupported} is not supported by this server`);
      }
    }
    const shares = integerField(body, "secret_shares", options.autoUnseal ? 1 : 5);
    const threshold = integerField(body, "secret_threshold", options.autoUnseal ? 1 : 3);
    if (options.autoUnseal && (shares !== 1 || threshold !== 1)) {
      throw badRequest("with auto-unseal configured ([seal] unseal_key_file or unseal_key_env), secret_shares and secret_threshold must be 1");
    }
    if (!ctx.seal.initialized) await ctx.seal.refresh();
    if (ctx.seal.initialized) throw badRequest("Vault is already initialized");
    const { keys, rootToken } = await initializeInstallation(ctx, options, request, { shares, threshold });
    const body200 = { keys: keys.map((k) => k.toString("hex")), keys_base64: keys.map((k) => k.toString("base64")), root_token: rootToken };
    for (const key of keys) key.fill(0);
    return body200;
  };
  app.put("/v1/sys/init", init);
  app.post("/v1/sys/init", init);

  const unseal = async (request: FastifyRequest) => {
    ctx.describe(request, "update", "sys/unseal");
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (!ctx.seal.initialized) await ctx.seal.refresh();
    if (!ctx.seal.initialized) throw badRequest("Vault is not initialized");
    if (body.reset === true) {
      ctx.seal.resetUnseal();
      return sealStatusBody(ctx);
    }
    if (typeof body.key !== "string" || body.key === "") throw badRequest("'key' must be specified in request body as JSON, or 'reset' set to true");
    await ctx.seal.unseal(body.key);
    // A rewrap a seal or restart interrupted resumes from its stored progress.
    if (!ctx.seal.sealed) void ctx.seal.rewrapInBackground();
    return sealStatusBody(ctx);
  };
  app.put("/v1/sys/unseal", unseal);
  app.post("/v1/sys/unseal", unseal);

  const seal = async (request: FastifyRequest, reply: FastifyReply) => {
    ctx.describe(request, "update", "sys/seal");
    // Vault requires sudo (and update) on sys/seal.
    const { capabilities } = await ctx.capabilities(request, "sys/seal");
    if (!capabilities.has("sudo") || capabilities.has("deny") || !capabilities.has("update")) throw permissionDenied();
    // The audit row is written before sealing, so a failure to audit leaves the server unsealed.
    await ctx.raw.audit.append(auditEntry(request, true, 204, null));
    request.egide.audited = true;
    ctx.seal.seal();
    return reply.code(204).send();
  };
  app.put("/v1/sys/seal", seal);
  app.post("/v1/sys/seal", seal);

  app.get("/v1/sys/seal-status", async () => {
    if (!ctx.seal.initialized) await ctx.seal.refresh();
    return sealStatusBody(ctx);
  });
}

function integerField(body: Record<string, unknown>, name: string, fallback: number): number {
  const value = body[name] ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value)) throw badRequest(`${name} must be a whole number`);
  return value;
}
