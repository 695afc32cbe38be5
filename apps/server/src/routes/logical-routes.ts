import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { dispatchPath, pathMethod } from "../engines/path-table.js";
import { addJsonBodyParser } from "../http/json-body.js";
import { VaultError, notFound } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import { bodyObject } from "../kv/kv-input.js";
import { parseKvRoute, type KvRoute } from "../kv/kv-paths.js";
import { KvNotFoundError, type KvResponse } from "../kv/kv-response.js";
import { KvV2Engine } from "../kv/kv-v2-engine.js";
import { KV_V2_PATHS, type KvCall } from "../kv/kv-v2-paths.js";
import { mountStoragePrefix, type Mount, type MountTable } from "../mounts/mount-table.js";
import type { EgideContext } from "../egide-context.js";

/** What the logical routes use of the server context. */
export type LogicalRoutesContext = Pick<EgideContext, "storage" | "mutate">;

/** The Content-Type Vault requires for PATCH. */
export const MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json";

/** Vault's 404 for a path under no mount. */
export function noHandlerForRoute(path: string): VaultError {
  return new VaultError(404, `no handler for route "${path}". route entry not found.`);
}

/** A write authorised as a create whose key another request created meanwhile. */
function createdMeanwhile(): VaultError {
  return new VaultError(409, "the secret was created by another request while this one was authorised as a create; retry");
}

/** Vault's 404 for a path under a mount that its engine does not serve. */
export function unsupportedPath(): VaultError {
  return new VaultError(404, "1 error occurred:\n\t* unsupported path\n\n");
}

/**
 * Registers the catch-all `/v1/*` (GET, POST, PUT, PATCH, DELETE; HEAD follows GET; LIST
 * arrives as GET with `list=true`) that serves every mounted secrets engine: it finds the
 * mount by longest prefix (404 "no handler for route" otherwise) and runs the engine's handler
 * for the path and method from the engine's path table (`KV_V2_PATHS`).
 *
 * Explicit routes (`/v1/sys/...`, `/v1/auth/...`) win over the catch-all: Fastify's router
 * prefers static segments to a wildcard, whatever the registration order.
 *
 * The request pipeline has authorised the canonical path before the handler runs, with
 * Vault's capabilities: GET → `read` (`list` for a list request, on the path with a trailing
 * `/`); POST/PUT on `data/` and `metadata/` → `create` when the key has no metadata yet,
 * `update` otherwise (the existence check declared here); POST/PUT elsewhere → `update`;
 * PATCH → `patch`; DELETE → `delete`. The handler acts on that same canonical path.
 */
export function registerLogicalRoutes(app: FastifyInstance, ctx: LogicalRoutesContext, mounts: MountTable): void {
  if (!app.hasContentTypeParser(MERGE_PATCH_CONTENT_TYPE)) {
    // JSON, like every body (an empty body is no body).
    addJsonBodyParser(app, MERGE_PATCH_CONTENT_TYPE);
  }
  app.route({
    method: ["GET", "POST", "PUT", "PATCH", "DELETE"],
    url: "/v1/*",
    config: {
      vault: {
        template: "<mount>/*",
        access: "acl",
        list: true,
        // Vault's KV v2 existence check: a write to a key without metadata is a create.
        exists: async (path) => {
          const target = await mounts.find(path);
          const route = target === null ? null : parseKvRoute(target.rest);
          if (target === null || route === null || (route.kind !== "data" && route.kind !== "metadata")) return true;
          return new KvV2Engine(mountStoragePrefix(target.mount)).exists(ctx.storage, route.path);
        },
      },
    },
    handler: (request, reply) => handleLogical(ctx, mounts, request, reply),
  });
}

/** One logical request, on the canonical path the pipeline authorised: mount lookup, dispatch. */
async function handleLogical(
  ctx: LogicalRoutesContext,
  mounts: MountTable,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const { path, operation } = request.egide;
  const method = pathMethod(request.method, operation === "list");
  if (method === "PATCH") assertMergePatch(request);
  const { mount, route, engine } = await resolve(mounts, path);
  const createOnly =
    operation === "create" && request.egide.session?.isRoot !== true && (route.kind === "data" || route.kind === "metadata");
  const call: KvCall = {
    engine,
    storage: ctx.storage,
    path: route.kind === "config" ? "" : route.path,
    body: method === "POST" || method === "PUT" || method === "PATCH" ? bodyObject(request.body) : {},
    query: (request.query ?? {}) as Record<string, unknown>,
    answer: (result) => send(request, reply, result),
    mutate: async (status, fn, answer) => {
      let result: KvResponse;
      try {
        result = await ctx.mutate(request, status, async (tx) => {
          if (!(await mounts.isMounted(tx, mount))) throw noHandlerForRoute(path);
          // Authorised as a create because the key did not exist: if another request created
          // it since, this would be an update the caller was never checked for.
          if (createOnly && (await engine.exists(tx, route.path))) throw createdMeanwhile();
          return fn(tx);
        });
      } catch (error) {
        if (error instanceof KvNotFoundError) return reply.code(404).send(vaultResponse(request, error.data));
        if (error instanceof VaultError && error.status === 404 && error.errors[0]?.startsWith("no handler for route")) mounts.invalidate();
        throw error;
      }
      return send(request, reply, answer ?? result);
    },
  };
  return dispatchPath(KV_V2_PATHS, route.kind, method, call);
}

/** The mount and engine route of `path`: 404 "no handler for route" or "unsupported path" otherwise. */
async function resolve(mounts: MountTable, path: string): Promise<{ mount: Mount; route: KvRoute; engine: KvV2Engine }> {
  const match = await mounts.find(path);
  if (match === null) throw noHandlerForRoute(path);
  const route = parseKvRoute(match.rest);
  if (route === null) throw unsupportedPath();
  return { mount: match.mount, route, engine: new KvV2Engine(mountStoragePrefix(match.mount)) };
}

/** Answers a {@link KvResponse} in Vault's envelope. */
function send(request: FastifyRequest, reply: FastifyReply, result: KvResponse): unknown {
  switch (result.status) {
    case 204:
      return reply.code(204).send();
    case 404:
      if (result.data === null || result.data === undefined) throw notFound();
      return reply.code(404).send(vaultResponse(request, result.data));
    default:
      return reply.code(200).send(vaultResponse(request, result.data, { warnings: result.warnings ?? [] }));
  }
}

/** Vault answers a PATCH without the merge-patch Content-Type with 415. */
function assertMergePatch(request: FastifyRequest): void {
  const header = request.headers["content-type"];
  const mediaType = (typeof header === "string" ? header : "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (mediaType !== MERGE_PATCH_CONTENT_TYPE) {
    throw new VaultError(
      415,
      `PATCH requires Content-Type ${MERGE_PATCH_CONTENT_TYPE} (got ${JSON.stringify(typeof header === "string" ? header : "")})`,
    );
  }
}
