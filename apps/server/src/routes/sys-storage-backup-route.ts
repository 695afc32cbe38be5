import { Readable } from "node:stream";
import { BackupWriter, DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES, MIN_CHUNK_BYTES } from "@egide/storage-backup";
import type { FastifyInstance } from "fastify";
import type { EgideContext } from "../egide-context.js";
import { badRequest } from "../http/vault-error.js";
import type { VaultRouteSpec } from "../http/vault-route.js";

/**
 * `GET /v1/sys/storage/backup` (`read` and `sudo`, like Vault's snapshot endpoint): streams an
 * encrypted, authenticated backup of every raw record of the storage, taken as one
 * point-in-time snapshot, in the format of `@egide/storage-backup` (docs/backup-format.md).
 * Optional `chunk_bytes` sets the chunk size; the record count and digest follow as the trailers
 * `X-Egide-Backup-Entries` and `X-Egide-Backup-Digest`. The audit row is written before the first byte
 * is sent; a storage failure mid-stream aborts the response, so a client never mistakes a cut
 * stream for a whole file (the format also makes a cut file fail to verify).
 */
export function registerStorageBackupRoute(app: FastifyInstance, ctx: EgideContext): void {
  const spec: VaultRouteSpec = { template: "sys/storage/backup", access: "acl", operation: "read", sudo: true };
  app.get("/v1/sys/storage/backup", { config: { vault: spec } }, async (request, reply) => {
    const query = (request.query ?? {}) as Record<string, string | undefined>;
    let chunkBytes = DEFAULT_CHUNK_BYTES;
    if (query.chunk_bytes !== undefined) {
      chunkBytes = Number(query.chunk_bytes);
      if (!/^\d+$/.test(query.chunk_bytes) || chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES) {
        throw badRequest(`chunk_bytes must be an integer from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES}`);
      }
    }
    const writer = new BackupWriter(ctx.adapter, ctx.seal, { chunkBytes });
    const stream = Readable.from(writer, { objectMode: false });
    stream.on("error", (error) => request.log.error({ err: error, requestId: request.id }, "backup stream failed; response aborted"));
    // The count and digest are known only at the end: sent as HTTP trailers, so a client can
    // report what it received (they are also inside the file, authenticated).
    reply.trailer("x-egide-backup-entries", async () => String(writer.summary?.records ?? ""));
    reply.trailer("x-egide-backup-digest", async () => writer.summary?.digest ?? "");
    return reply
      .header("content-type", "application/octet-stream")
      .header("content-disposition", 'attachment; filename="egide-backup.enc"')
      .header("cache-control", "no-store")
      .send(stream);
  });
}
