import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Transaction } from "@egide/storage-core";
import { parseJsonBody } from "../http/json-body.js";
import { VaultError, badRequest, notFound, permissionDenied, unsupportedOperation } from "../http/vault-error.js";
import { isListRequest, vaultResponse } from "../http/vault-response.js";
import { bodyObject, field } from "../kv/kv-input.js";
import { parseKvRoute, type KvRoute } from "../kv/kv-paths.js";
import { KvNotFoundError, type KvResponse } from "../kv/kv-response.js";
import { KvV2Engine } from "../kv/kv-v2-engine.js";
import { mountStoragePrefix, type Mount, type MountTable } from "../mounts/mount-table.js";
import type { Capability, Operation, ServerContext } from "../server-context.js";

/** What the logical routes use of the server context. */
export type LogicalRoutesContext = Pick<ServerContext, "storage" | "authorize" | "capabilities" | "mutate" | "describe">;

/** The Content-Type Vault requires for PATCH. */
export const MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json";

/** Vault's 404 for a path under no mount. */
export function noHandlerForRoute(path: string): VaultError {
  return new VaultError(404, `no handler for route "${path}". route entry not found.`);
}

/** Vault's 404 for a path under a mount that its engine does not serve. */
export function unsupportedPath(): VaultError {
  return new VaultError(404, "1 error occurred:\n\t* unsupported path\n\n");
}

/**
 * Registers the catch-all `/v1/*` (GET, POST, PUT, PATCH, DELETE; HEAD follows GET; LIST
 * arrives as GET with `list=true`) that serves every mounted secrets engine: it finds the
 * mount by longest prefix (404 "no handler for route" otherwise), checks the capability Vault
 * would check, and calls the KV version 2 engine.
 *
 * Explicit routes (`/v1/sys/...`, `/v1/auth/...`) win over the catch-all: Fastify's router
 * prefers static segments to a wildcard, whatever the registration order.
 *
 * Capabilities, as Vault maps them: GET → `read` (`list` for a list request, on the path with
 * a trailing `/`); POST/PUT on `data/` and `metadata/` → `create` when the key has no
 * metadata yet, `update` otherwise; POST/PUT elsewhere (`config`, `delete/`, `undelete/`,
 * `destroy/`) → `update`; PATCH → `patch`; DELETE → `delete`.
 */
export function registerLogicalRoutes(app: FastifyInstance, ctx: LogicalRoutesContext, mounts: MountTable): void {
  if (!app.hasContentTypeParser(MERGE_PATCH_CONTENT_TYPE)) {
    // JSON, like every body (an empty body is no body).
    app.addContentTypeParser(MERGE_PATCH_CONTENT_TYPE, { parseAs: "string" }, (_request: FastifyRequest, body: string, done: (error: Error | null, value?: unknown) => void) => {
      try {
        done(null, parseJsonBody(body));
      } catch (error) {
        done(error as Error);
      }
    });
  }
  app.route({
    method: ["GET", "POST", "PUT", "PATCH", "DELETE"],
    url: "/v1/*",
    handler: (request, reply) => handleLogical(ctx, mounts, request, reply),
  });
}

/** One logical request: authorisation, mount lookup, dispatch. */
async function handleLogical(ctx: LogicalRoutesContext, mounts: MountTable, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const vaultPath = (request.params as Record<string, string | undefined>)["*"] ?? "";
  const method = request.method === "HEAD" ? "GET" : request.method;
  const list = method === "GET" && isListRequest(request);
  // Vault lists (and checks the list capability on) the path with a trailing slash.
  const path = list && !vaultPath.endsWith("/") ? `${vaultPath}/` : vaultPath;
  const operation = baseOperation(method, list);

  if (method === "PATCH") assertMergePatch(request);
  ctx.describe(request, operation, path);

  let target: { mount: Mount; route: KvRoute; engine: KvV2Engine };
  if (operation === "update") {
    // create or update: which one depends on whether the key exists, known after routing.
    const { capabilities } = await ctx.capabilities(request, path);
    const allowed = (capability: Capability) => !capabilities.has("deny") && capabilities.has(capability);
    if (!allowed("create") && !allowed("update")) throw permissionDenied();
    target = await resolve(mounts, path);
    let writeOperation: Operation = "update";
    if (target.route.kind === "data" || target.route.kind === "metadata") {
      writeOperation = (await target.engine.exists(ctx.storage, target.route.path)) ? "update" : "create";
    }
    ctx.describe(request, writeOperation, path);
    if (!allowed(writeOperation)) throw permissionDenied();
  } else {
    await ctx.authorize(request, path, operation);
    target = await resolve(mounts, path);
  }

  const { mount, route, engine } = target;
  const body = method === "POST" || method === "PUT" || method === "PATCH" ? bodyObject(request.body) : {};
  const query = (request.query ?? {}) as Record<string, unknown>;

  /** Runs a write in a mutation (with its audit row) and answers its result. */
  const mutation = async (status: number, fn: (tx: Transaction) => Promise<KvResponse>, answer?: KvResponse): Promise<unknown> => {
    let result: KvResponse;
    try {
      result = await ctx.mutate(request, status, async (tx) => {
        if (!(await mounts.isMounted(tx, mount))) throw noHandlerForRoute(vaultPath);
        return fn(tx);
      });
    } catch (error) {
      if (error instanceof KvNotFoundError) return reply.code(404).send(vaultResponse(request, error.data));
      if (error instanceof VaultError && error.status === 404 && error.errors[0]?.startsWith("no handler for route")) mounts.invalidate();
      throw error;
    }
    return send(request, reply, answer ?? result);
  };

  switch (route.kind) {
    case "data":
      if (list) break;
      switch (method) {
        case "GET":
          return send(request, reply, await engine.readData(ctx.storage, route.path, query.version));
        case "POST":
        case "PUT":
          return mutation(200, (tx) => engine.write(tx, route.path, field(body, "data"), field(body, "options")));
        case "PATCH":
          return mutation(200, (tx) => engine.patch(tx, route.path, field(body, "data"), field(body, "options")));
        case "DELETE":
          return mutation(204, (tx) => engine.deleteLatest(tx, route.path));
        default:
          break;
      }
      break;
    case "metadata":
      switch (method) {
        case "GET":
          return send(request, reply, list ? await engine.listMetadata(ctx.storage, route.path) : await engine.readMetadata(ctx.storage, route.path));
        case "POST":
        case "PUT":
        case "PATCH": {
          // The status (and so the audit row) is decided before the mutation: 200 when the
          // answer carries a warning, 204 otherwise.
          const warnings = await engine.metadataWarnings(ctx.storage, body);
          const answer: KvResponse = warnings.length > 0 ? { status: 200, data: null, warnings } : { status: 204 };
          return method === "PATCH"
            ? mutation(answer.status, (tx) => engine.patchMetadata(tx, route.path, body), answer)
            : mutation(answer.status, (tx) => engine.writeMetadata(tx, route.path, body), answer);
        }
        case "DELETE":
          return mutation(204, (tx) => engine.deleteMetadata(tx, route.path));
        default:
          break;
      }
      break;
    case "config":
      if (list) break;
      if (method === "GET") return send(request, reply, await engine.readConfig(ctx.storage));
      if (method === "POST" || method === "PUT") return mutation(204, (tx) => engine.writeConfig(tx, body));
      break;
    case "delete":
    case "undelete":
    case "destroy":
      if (method === "POST" || method === "PUT") {
        const versions = field(body, "versions");
        const kind = route.kind;
        return mutation(204, (tx) =>
          kind === "delete"
            ? engine.deleteVersions(tx, route.path, versions)
            : kind === "undelete"
              ? engine.undeleteVersions(tx, route.path, versions)
              : engine.destroyVersions(tx, route.path, versions),
        );
      }
      break;
    case "subkeys":
      if (method === "GET" && !list) return send(request, reply, await engine.readSubkeys(ctx.storage, route.path, query.version, query.depth));
      break;
    default:
      break;
  }
  throw unsupportedOperation();
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

function baseOperation(method: string, list: boolean): Operation {
  switch (method) {
    case "GET":
      return list ? "list" : "read";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
    default:
      return "update";
  }
}

/** Vault answers a PATCH without the merge-patch Content-Type with 415. */
function assertMergePatch(request: FastifyRequest): void {
  const header = request.headers["content-type"];
  const mediaType = (typeof header === "string" ? header : "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (mediaType !== MERGE_PATCH_CONTENT_TYPE) {
    throw new VaultError(415, `PATCH requires Content-Type ${MERGE_PATCH_CONTENT_TYPE} (got ${JSON.stringify(typeof header === "string" ? header : "")})`);
  }
}
