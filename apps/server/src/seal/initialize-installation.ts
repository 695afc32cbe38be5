import { lstat } from "node:fs/promises";
import { dirname } from "node:path";
import { SealError, SealErrorCode, writeUnsealKeyFile } from "@egide/crypto-envelope";
import type { FastifyRequest } from "fastify";
import { auditEntry } from "../audit/audit-entry.js";
import type { EgideContext } from "../egide-context.js";
import type { SealRouteOptions } from "../routes/sys-seal-routes.js";

/** Options of {@link initializeInstallation} beyond the route's. */
export interface InitializeInstallationSettings {
  /**
   * Stay unsealed after the commit (dev mode, tests), with the keys the initialisation made and
   * without feeding shares through the unseal progress. Auto-unseal (`options.autoUnseal`)
   * always stays unsealed.
   */
  unseal?: boolean;
}

/** What {@link initializeInstallation} returns: the only time the shares and the root token exist outside their holders. */
export interface InitializeInstallationResult {
  /** The unseal key shares (raw bytes). The caller hands them out and then wipes them. */
  keys: Buffer[];
  rootToken: string;
  /**
   * What went wrong after the installation was committed, for the operator (Vault's
   * `warnings`): today only an auto-unseal key file that could not be written. Holds no secret.
   */
  warnings: string[];
}

/**
 * Initialises the installation (Vault's `PUT /v1/sys/init`, or in-process for dev mode and
 * tests with `request` undefined): Shamir shares of a new unseal key, the root token, the
 * default `secret/` KV v2 mount and the request's audit row, all in the seal manager's one
 * initialising transaction, so either everything commits or nothing does and the installation
 * stays uninitialised and sealed, ready for another try. The shares never go through the unseal
 * progress that `sys/unseal` callers share. Returns the shares and the root token, once.
 *
 * It stays sealed afterwards unless auto-unseal is configured or `settings.unseal`. With an
 * auto-unseal key file, the file is written (atomically) only after the commit; see below for
 * what happens when that write fails.
 */
export async function initializeInstallation(
  ctx: EgideContext,
  options: SealRouteOptions,
  request: FastifyRequest | undefined,
  scheme: { shares: number; threshold: number },
  settings: InitializeInstallationSettings = {},
): Promise<InitializeInstallationResult> {
  const autoUnseal = options.autoUnseal;
  const keyFile = autoUnseal !== undefined && "file" in autoUnseal ? autoUnseal.file : undefined;
  if (autoUnseal !== undefined && (scheme.shares !== 1 || scheme.threshold !== 1)) {
    throw new SealError(SealErrorCode.INVALID_ARGUMENT, "with auto-unseal configured, secret_shares and secret_threshold must be 1");
  }
  // Refused before anything is stored, so the usual reasons the key file cannot be written
  // after the commit (a key of an earlier installation still there, no such directory) never
  // leave an installation behind.
  if (keyFile !== undefined) await checkKeyFileWritable(keyFile);

  let rootToken = "";
  const { shares } = await ctx.seal.initialize(scheme, {
    unseal: autoUnseal !== undefined || settings.unseal === true,
    // May run more than once (the storage retries a transaction after a serialization
    // conflict): only the last run commits, and its token is the one kept.
    within: async (tx) => {
      const created = await options.tokens.create(tx, {
        policies: ["root"],
        displayName: "root",
        ttlMs: 0,
        maxTtlMs: 0,
        renewable: false,
        parentAccessor: null,
      });
      rootToken = created.token;
      await options.mounts.ensureDefaultIn(tx);
      if (request !== undefined && !request.egide.skipAudit) await tx.appendAudit(auditEntry(request, true, 200, null));
    },
  });

  // Committed (the seal manager zeroed the shares and rethrew on any failure before this).
  // From here on nothing may throw: the shares are the only copy of the unseal key.
  options.mounts.invalidate();
  if (request !== undefined) request.egide.audited = true;
  const warnings: string[] = [];
  if (keyFile !== undefined && shares[0] !== undefined) {
    try {
      await writeUnsealKeyFile(keyFile, shares[0]);
    } catch (error) {
      // The installation IS initialised, and its key is only in `shares`: failing the request
      // would lose it. So the keys are answered all the same, with a warning, and the server
      // is sealed again. Staying unsealed would let secrets be written that the next restart
      // could not reach (auto-unseal finds no key file) if the answer was not kept; sealed, the
      // server is useless until someone unseals it with the answered key (`sys/unseal`),
      // which proves the key was kept, and then writes the key file from it.
      ctx.seal.seal();
      const reason = (error as NodeJS.ErrnoException)?.code ?? (error as Error)?.message ?? String(error);
      const warning =
        `the installation is initialised, but the unseal key file ${keyFile} could not be written (${reason}); ` +
        "the server is sealed: keep the key from this answer, unseal with it, and write it to the key file (mode 0600) before the next restart";
      warnings.push(warning);
      request?.log.error({ err: error, requestId: request.id, keyFile }, "auto-unseal key file not written after init; sealed");
    }
  }
  const keyEnv = options.autoUnseal !== undefined && "env" in options.autoUnseal ? options.autoUnseal.env : undefined;
  if (keyEnv !== undefined) {
    // Nothing can be written to an environment variable: the new key is only in this answer.
    warnings.push(
      `auto-unseal reads the unseal key from $${keyEnv}: set it to the key in this answer before the next restart, or the server will not unseal`,
    );
  }
  return { keys: shares, rootToken, warnings };
}

/**
 * Fails with `UNSEAL_KEY_SOURCE` (a 400 naming the file) when the auto-unseal key file
 * already exists or its directory does not: the file is never overwritten.
 */
async function checkKeyFileWritable(file: string): Promise<void> {
  const existing = await lstat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? false : Promise.reject(error)),
  );
  if (existing) {
    throw new SealError(
      SealErrorCode.UNSEAL_KEY_SOURCE,
      `the unseal key file ${file} already exists (the key of an earlier installation?); it is never overwritten: move it away and try again`,
    );
  }
  const directory = dirname(file);
  const info = await lstat(directory).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new SealError(SealErrorCode.UNSEAL_KEY_SOURCE, `the directory ${directory} of the unseal key file does not exist`);
  }
}
