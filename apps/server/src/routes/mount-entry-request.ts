import type { FastifyReply, FastifyRequest } from "fastify";
import type { Transaction } from "@egide/storage-core";
import type { EgideContext } from "../egide-context.js";
import { notFound } from "../http/vault-error.js";

/**
 * The mount path part of a canonical `<prefix>/<path>` request (`sys/mounts/team` → `team`),
 * or "" for `<prefix>` itself.
 */
export function mountPathBelow(request: FastifyRequest, prefix: string): string {
  const path = request.egide.path;
  if (path === prefix) return "";
  // The pipeline only lets paths under the route's template through; anything else is a bug.
  if (!path.startsWith(`${prefix}/`)) throw notFound();
  return path.slice(prefix.length + 1);
}

/**
 * A mount path's canonical request form: no trailing slash (`sys/mounts/team/` →
 * `sys/mounts/team`), so that both spellings are authorised and acted on as one path.
 */
export function withoutTrailingSlash(path: string): string {
  return path.endsWith("/") ? path.slice(0, -1) : path;
}

/** The mount path of a `<path>/tune` request path, or null when it is not one. */
export function tuneTarget(raw: string): string | null {
  if (!raw.endsWith("/tune")) return null;
  const path = raw.slice(0, -"/tune".length);
  return path === "" ? null : path;
}

/**
 * Runs a change of a mount table (`fn`, in one audited transaction) and answers 204. The
 * table's cache is dropped whether or not the change committed: the table forgets it at the
 * change, but a read between that and the commit may have cached the old entries again.
 */
export async function changeMountTable(
  ctx: Pick<EgideContext, "mutate">,
  request: FastifyRequest,
  reply: FastifyReply,
  table: { invalidate(): void },
  fn: (tx: Transaction) => Promise<unknown>,
): Promise<FastifyReply> {
  try {
    await ctx.mutate(request, 204, fn);
  } finally {
    table.invalidate();
  }
  return reply.code(204).send();
}
