import type { Transaction } from "@egide/storage-core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { dispatchPath, pathMethod } from "../engines/path-table.js";
import { addJsonBodyParser } from "../http/json-body.js";
import { VaultError, notFound } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import { bodyObject } from "../kv/kv-input.js";
import { parseKvRoute } from "../kv/kv-paths.js";
import { KvNotFoundError, type KvResponse } from "../kv/kv-response.js";
import { KvV1Engine, type KvV1Response } from "../kv/kv-v1-engine.js";
import { KV_V1_PATHS, parseKvV1Route, type KvV1Call } from "../kv/kv-v1-paths.js";
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
 * for the path and method from the path table of the mount's KV version (`KV_V1_PATHS` or
 * `KV_V2_PATHS`).
 *
 * Explicit routes (`/v1/sys/...`, `/v1/auth/...`) win over the catch-all: Fastify's router
 * prefers static segments to a wildcard, whatever the registration order.
 *
 * The request pipeline has authorised the canonical path before the handler runs, with
 * Vault's capabilities: GET → `read` (`list` for a list request, on the path with a trailing
 * `/`); POST/PUT on a KV v2 mount's `data/` and `metadata/` → `create` when the key has no
 * metadata yet, `update` otherwise, and on a KV v1 mount's secret → `create` when nothing is
 * stored there (the existence checks declared here); POST/PUT elsewhere → `update`; PATCH →
 * `patch`; DELETE → `delete`. The handler acts on that same canonical path.
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
        // Vault's existence checks: a write to a KV v2 key without metadata, or to a KV v1
        // path where nothing is stored, is a create.
        exists: async (path) => {
          const target = await mounts.find(path);
          if (target === null) return true;
          if (isKvV1(target.mount)) return new KvV1Engine(mountStoragePrefix(target.mount)).exists(ctx.storage, target.rest);
          const route = parseKvRoute(target.rest);
          if (route === null || (route.kind !== "data" && route.kind !== "metadata")) return true;
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
  const match = await mounts.find(path);
  if (match === null) throw noHandlerForRoute(path);
  const { mount } = match;
  // Parsed once the engine knows the path (an unsupported path is a 404 whatever the body).
  const bodyOf = () => (method === "POST" || method === "PUT" || method === "PATCH" ? bodyObject(request.body) : {});
  // Authorised as a create because the key did not exist: if another request created it
  // since, this would be an update the caller was never checked for.
  const createOnly = operation === "create" && request.egide.session?.isRoot !== true;
  const answer = (result: KvV1Response) => send(request, reply, result);
  const mutate = (status: number, fn: (tx: Transaction) => Promise<KvV1Response>, existsNow: ExistsNow | null, fixed?: KvResponse) =>
    mutateIn(ctx, mounts, request, reply, { mount, status, existsNow, fn, answer: fixed });

  if (isKvV1(mount)) {
    // A mount's version never changes (upgrades are refused), so the engine chosen here from
    // the cached table is the one of the mount `mutateIn` finds still mounted.
    const engine = new KvV1Engine(mountStoragePrefix(mount));
    const route = parseKvV1Route(match.rest);
    const call: KvV1Call = {
      engine,
      storage: ctx.storage,
      path: route.path,
      body: bodyOf(),
      answer,
      mutate: (status, fn) => mutate(status, fn, createOnly ? (tx) => engine.exists(tx, route.path) : null),
    };
    return dispatchPath(KV_V1_PATHS, route.kind, method, call);
  }

  const route = parseKvRoute(match.rest);
  if (route === null) throw unsupportedPath();
  const engine = new KvV2Engine(mountStoragePrefix(mount));
  const keyed = route.kind === "data" || route.kind === "metadata";
  const call: KvCall = {
    engine,
    storage: ctx.storage,
    path: route.kind === "config" ? "" : route.path,
    body: bodyOf(),
    query: (request.query ?? {}) as Record<string, unknown>,
    answer,
    mutate: (status, fn, fixed) => mutate(status, fn, createOnly && keyed ? (tx) => engine.exists(tx, route.path) : null, fixed),
  };
  return dispatchPath(KV_V2_PATHS, route.kind, method, call);
}

/** Whether `mount` is a KV version 1 mount (every other mount is KV version 2). */
function isKvV1(mount: Mount): boolean {
  return mount.options.version === "1";
}

/** Whether the key a create was authorised for exists by now, asked inside the write's transaction. */
type ExistsNow = (tx: Transaction) => Promise<boolean>;

/**
 * Runs `fn` in a mutation (one transaction with the request's audit row) that first checks
 * that `mount` is still mounted and, for a create, that the key is still absent; then answers
 * `answer` (decided before, so that the audit row agrees) or else the result. A 404 with a
 * body (`KvNotFoundError`) is answered as such, after the rollback.
 */
async function mutateIn(
  ctx: LogicalRoutesContext,
  mounts: MountTable,
  request: FastifyRequest,
  reply: FastifyReply,
  op: {
    mount: Mount;
    status: number;
    existsNow: ExistsNow | null;
    fn: (tx: Transaction) => Promise<KvV1Response>;
    answer?: KvResponse | undefined;
  },
): Promise<unknown> {
  let result: KvV1Response;
  try {
    result = await ctx.mutate(request, op.status, async (tx) => {
      if (!(await mounts.isMounted(tx, op.mount))) throw noHandlerForRoute(request.egide.path);
      if (op.existsNow !== null && (await op.existsNow(tx))) throw createdMeanwhile();
      return op.fn(tx);
    });
  } catch (error) {
    if (error instanceof KvNotFoundError) return reply.code(404).send(vaultResponse(request, error.data));
    if (error instanceof VaultError && error.status === 404 && error.errors[0]?.startsWith("no handler for route")) mounts.invalidate();
    throw error;
  }
  return send(request, reply, op.answer ?? result);
}

/**
 * Answers a {@link KvResponse} in Vault's envelope; a KV v1 read carries its advisory
 * `lease_duration` (Vault's passthrough backend answers one, without a lease id).
 */
function send(request: FastifyRequest, reply: FastifyReply, result: KvV1Response): unknown {
  switch (result.status) {
    case 204:
      return reply.code(204).send();
    case 404:
      if (result.data === null || result.data === undefined) throw notFound();
      return reply.code(404).send(vaultResponse(request, result.data));
    default: {
      const envelope = vaultResponse(request, result.data, { warnings: result.warnings ?? [] });
      if (result.leaseDuration !== undefined) envelope.lease_duration = result.leaseDuration;
      return reply.code(200).send(envelope);
    }
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
