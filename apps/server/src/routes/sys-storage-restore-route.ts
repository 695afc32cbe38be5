import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BackupError, BackupErrorCode, restoreInstallation } from "@egide/storage-backup";
import { StorageError, StorageErrorCode, isAuditingTransaction } from "@egide/storage-core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { auditEntry } from "../audit/audit-entry.js";
import type { EgideContext } from "../egide-context.js";
import { VaultError, badRequest } from "../http/vault-error.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { vaultResponse } from "../http/vault-response.js";

/**
 * `POST /v1/sys/storage/restore` (`update` and `sudo`; the body is a backup file as
 * `application/octet-stream`; `?force=true` to replace a storage that holds records, which a
 * server in use always does): stores the upload in a private temporary file (memory stays
 * constant whatever its size), verifies all of it, then replaces the whole storage in one
 * transaction that also writes the request's audit row and activates a new key version, and
 * seals this server: unseal it again with the same keys. A backup of another installation, or
 * any damaged, truncated or extended file, is refused (400) before anything changes.
 * Other servers on the same database should be sealed or stopped first.
 */
export function registerStorageRestoreRoute(app: FastifyInstance, ctx: EgideContext): void {
  // Its own plugin context: only this route receives its body as a stream, unparsed and
  // unbounded by the JSON body limit.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      "*",
      (_request: FastifyRequest, payload: NodeJS.ReadableStream, done: (error: Error | null, value?: unknown) => void) =>
        done(null, payload),
    );
    const spec: VaultRouteSpec = { template: "sys/storage/restore", access: "acl", operation: "update", sudo: true, body: "stream" };
    scope.post("/v1/sys/storage/restore", { config: { vault: spec } }, async (request) => {
      const body = request.body;
      if (!(body instanceof Readable))
        throw badRequest("send the backup file as the request body (Content-Type: application/octet-stream)");
      const force = (request.query as Record<string, string | undefined>).force === "true";
      const directory = await mkdtemp(join(tmpdir(), "egide-restore-"));
      const file = join(directory, "upload.enc");
      try {
        await pipeline(body, createWriteStream(file, { mode: 0o600 }));
        const report = await restoreInstallation({
          target: ctx.adapter,
          open: () => createReadStream(file),
          keys: { running: ctx.seal },
          force,
          beforeCommit: async (tx) => {
            if (!isAuditingTransaction(tx))
              throw new StorageError(StorageErrorCode.INTERNAL, "the storage backend cannot write audit rows inside a transaction");
            await tx.appendAudit(auditEntry(request, true, 200, null));
          },
        });
        request.egide.audited = true;
        // Every key this process holds predates the restore: seal, and let the operator unseal.
        ctx.seal.seal();
        await ctx.seal.refresh();
        const data = {
          entries: report.records,
          digest: report.digest,
          replaced: report.replaced,
          created_time: report.header.createdAt.toISOString(),
          key_version: report.keyVersion,
          sealed: true,
        };
        return vaultResponse(request, data, {
          warnings: ["the storage was restored and this server is now sealed: unseal it with the same keys"],
        });
      } catch (error) {
        if (BackupError.isInstance(error)) {
          throw new VaultError(error.code === BackupErrorCode.TARGET_NOT_EMPTY ? 409 : 400, `${error.message} [${error.code}]`);
        }
        throw error;
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    });
  });
}
