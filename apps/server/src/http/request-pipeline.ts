import type { IncomingMessage } from "node:http";
import type { FastifyInstance, FastifyRequest, RouteOptions } from "fastify";
import type { RequestSession } from "../audit/request-state.js";
import { operationOf } from "../audit/request-state.js";
import type { TokenEntry } from "../auth/token-store.js";
import type { Caller, Operation } from "../server-context.js";
import { canonicalTarget, routingUrl } from "./canonical-path.js";
import type { CanonicalTarget } from "./canonical-path.js";
import { ORIGINAL_METHOD_HEADER, ORIGINAL_METHOD_LIST } from "./list-request-rewriter.js";
import { VaultError, badRequest, permissionDenied, sealedError } from "./vault-error.js";
import { isListRequest } from "./vault-response.js";
import { routeSpec } from "./vault-route.js";

/** What an ACL check is asked (Vault's `logical.Request`, reduced to what policies look at). */
export interface AclCheck {
  path: string;
  operation: Operation;
  /** The request's parameters: body fields for writes, query fields for reads. */
  data?: Record<string, unknown>;
}

/** What the pipeline needs from the server: the seal state, tokens, and the ACL. */
export interface RequestAuthorizer {
  readonly sealed: boolean;
  /** The live token of the request and its entry, or null when it has none (or an unknown, expired or malformed one). */
  authenticate(request: FastifyRequest): Promise<{ token: string; entry: TokenEntry; caller: Caller } | null>;
  /** Vault's `AllowOperation` for `caller`'s policies; `capabilityCheckOnly` leaves parameter constraints out. */
  allowOperation(caller: Caller, check: AclCheck, capabilityCheckOnly: boolean): Promise<{ allowed: boolean; sudo: boolean }>;
}

/** Options of {@link installRequestPipeline}. */
export interface RequestPipelineOptions {
  /** Paths whose requests are not audited (health checks, when so configured). */
  unaudited: ReadonlySet<string>;
}

// The canonical target of each raw request, made once by `rewriteUrl` before routing, with
// the URL as sent (Fastify replaces `raw.url` with the rewritten one).
const targets = new WeakMap<IncomingMessage, { sent: string; target: CanonicalTarget | VaultError }>();

/**
 * Fastify's `rewriteUrl`: canonicalises the request target once (see `canonical-path.ts`) and
 * routes on that canonical form. A target that cannot be canonicalised is routed to no route
 * at all; the pipeline then answers its 400 (with an audit row).
 */
export function canonicalRewriteUrl(raw: IncomingMessage): string {
  const url = raw.url ?? "/";
  const target = canonicalTarget(url);
  if (target === undefined) return url;
  targets.set(raw, { sent: url, target });
  if (!(target instanceof VaultError)) return routingUrl(target);
  // The query is kept, so that a refused list request is still described (and audited) as one.
  const question = url.indexOf("?");
  return `/v1/sys/internal/egide/invalid-path${question < 0 ? "" : url.slice(question)}`;
}

/** Whether the request was a `LIST` (rewritten to `GET ?list=true` by this process, never a client's header). */
function sentAsList(request: FastifyRequest): boolean {
  return request.headers[ORIGINAL_METHOD_HEADER.toLowerCase()] === ORIGINAL_METHOD_LIST;
}

/**
 * The one place where requests are described, authenticated and authorised, before any body
 * is read or any handler runs:
 *
 * 1. `onRequest` takes the canonical path made by {@link canonicalRewriteUrl}, applies the
 *    route's resource canonical form, and sets `request.egide` (operation, path, method):
 *    what the ACL checks, what the handler acts on, and what the audit row and metrics record.
 *    Then, by the route's declared access, it refuses a sealed server, reads the token, and
 *    checks the ACL capabilities (with Vault's existence check for create vs update). All of
 *    this happens before the body is read, so an unauthenticated client costs no buffering.
 * 2. `preHandler` checks the policies' parameter constraints against the parsed body (or the
 *    query of a read).
 *
 * Every route must carry a declaration (`config.vault`): registering one without fails.
 */
export function installRequestPipeline(app: FastifyInstance, authorizer: RequestAuthorizer, options: RequestPipelineOptions): void {
  app.addHook("onRoute", (route: RouteOptions) => {
    const config = route.config as { vault?: unknown } | undefined;
    if (config?.vault === undefined) {
      throw new Error(`route ${String(route.method)} ${route.url} has no Vault route declaration (config.vault); every route must declare its path template and access`);
    }
  });

  app.decorateRequest("egide", null as never);
  app.addHook("onRequest", async (request, reply) => {
    const canonical = targets.get(request.raw);
    const target = canonical?.target;
    const list = (request.method === "GET" || request.method === "HEAD") && isListRequest(request);
    const path = target === undefined || target instanceof VaultError ? printableRawPath(canonical?.sent ?? request.raw.url) : target.path;
    request.egide = {
      operation: operationOf(request.method, list),
      path,
      method: sentAsList(request) ? "LIST" : request.method,
      caller: undefined,
      session: undefined,
      audited: false,
      skipAudit: options.unaudited.has(path),
    };
    // Nothing here is cacheable: secrets, tokens, and answers that depend on the token.
    void reply.header("cache-control", "no-store");
    if (target instanceof VaultError) throw target;
    if (request.headers["x-vault-wrap-ttl"] !== undefined) {
      throw badRequest("response wrapping (X-Vault-Wrap-TTL) is not supported by this server; the request was not run");
    }
    const spec = routeSpec(request);
    if (spec === undefined) return; // not found: no route, nothing to authorise
    let resource = spec.canonical ? spec.canonical(path) : path;
    // Vault lists (and checks the list capability on) the path with a trailing slash.
    if (list && !resource.endsWith("/")) resource += "/";
    request.egide.path = resource;
    if (spec.operation !== undefined) request.egide.operation = spec.operation;
    assertJsonBodyAllowed(request, spec.body ?? "json");

    if (spec.access === "public") return;
    if (authorizer.sealed) throw sealedError();
    const authenticated = await authorizer.authenticate(request);
    if (authenticated === null) throw permissionDenied();
    const isRoot = authenticated.caller.policies.includes("root");
    const session: RequestSession = { ...authenticated, sudo: isRoot, isRoot };
    request.egide.caller = authenticated.caller;
    request.egide.session = session;
    if (spec.access === "token" || isRoot) {
      if (isRoot && spec.exists && isWrite(request.method)) request.egide.operation = (await spec.exists(resource, request)) ? "update" : "create";
      return;
    }

    const { caller } = authenticated;
    if (spec.exists && isWrite(request.method) && spec.operation === undefined) {
      // Vault's order: the caller must hold create or update before the existence check runs.
      const create = await authorizer.allowOperation(caller, { path: resource, operation: "create" }, true);
      const update = await authorizer.allowOperation(caller, { path: resource, operation: "update" }, true);
      if (!create.allowed && !update.allowed) throw permissionDenied();
      request.egide.operation = (await spec.exists(resource, request)) ? "update" : "create";
    }
    const result = await authorizer.allowOperation(caller, { path: resource, operation: request.egide.operation }, true);
    if (!result.allowed || (spec.sudo === true && !result.sudo)) throw permissionDenied();
    session.sudo = result.sudo;
  });

  app.addHook("preHandler", async (request) => {
    const session = request.egide.session;
    const spec = routeSpec(request);
    if (session === undefined || session.isRoot || spec?.access !== "acl") return;
    const { operation, path } = request.egide;
    const data = parametersOf(request, operation);
    if (data === undefined) return;
    const result = await authorizer.allowOperation(session.caller, { path, operation, data }, false);
    if (!result.allowed) throw permissionDenied();
  });
}

/** The parameters policies constrain: the body's fields for writes, the query's for reads (without `list`). */
function parametersOf(request: FastifyRequest, operation: Operation): Record<string, unknown> | undefined {
  if (operation === "read") {
    const query = { ...(request.query as Record<string, unknown> | undefined) };
    delete query.list;
    return query;
  }
  if (operation === "create" || operation === "update" || operation === "patch") {
    const body = request.body;
    return typeof body === "object" && body !== null && !Array.isArray(body) && !(Symbol.asyncIterator in body) ? (body as Record<string, unknown>) : {};
  }
  return undefined;
}

function isWrite(method: string): boolean {
  return method === "POST" || method === "PUT";
}

/**
 * Cross-site requests can send `text/plain`, form and multipart bodies without a preflight, so
 * state-changing `sys/` routes take a JSON body only as `application/json` or without a
 * Content-Type (as Vault's clients send it).
 */
function assertJsonBodyAllowed(request: FastifyRequest, body: "json" | "stream"): void {
  if (body !== "json" || request.method === "GET" || request.method === "HEAD" || !request.egide.path.startsWith("sys/")) return;
  const header = request.headers["content-type"];
  if (header === undefined) return;
  const semicolon = header.indexOf(";");
  const mediaType = (semicolon < 0 ? header : header.slice(0, semicolon)).trim().toLowerCase();
  if (mediaType !== "application/json") {
    throw new VaultError(415, `sys/ endpoints take JSON bodies: send Content-Type: application/json (got ${JSON.stringify(header.slice(0, 100))})`);
  }
}

// A target outside the API, or one refused, is audited as sent (without `/v1/` or the leading
// `/`), bounded; audit-entry percent-encodes control characters.
function printableRawPath(url: string | undefined): string {
  const raw = (url ?? "").split("?")[0] ?? "";
  return (raw.startsWith("/v1/") ? raw.slice(4) : raw.startsWith("/") ? raw.slice(1) : raw).slice(0, 1024);
}
