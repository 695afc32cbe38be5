import type { IncomingMessage } from "node:http";
import type { FastifyInstance, FastifyRequest, RouteOptions } from "fastify";
import type { RequestSession } from "../audit/request-state.js";
import { operationOf } from "../audit/request-state.js";
import type { TokenEntry } from "../auth/token-store.js";
import type { Caller, Operation } from "../server-context.js";
import { canonicalTarget, routingUrl } from "./canonical-path.js";
import type { CanonicalTarget } from "./canonical-path.js";
import { ORIGINAL_METHOD_HEADER, ORIGINAL_METHOD_LIST } from "./list-request-rewriter.js";
import { VaultError, badRequest, notFound, permissionDenied, sealedError, unsupportedOperation } from "./vault-error.js";
import { listParameter } from "./list-parameter.js";
import { routeSpec } from "./vault-route.js";
import type { VaultRouteSpec } from "./vault-route.js";
import { wrappingTtlAllowed } from "../policy/acl.js";
import { setRequestWrapping } from "../wrapping/wrap-request.js";
import { WRAP_TTL_HEADER, parseWrapTtlHeader } from "../wrapping/wrap-ttl.js";
import { UNWRAP_PATH, invalidWrappingToken, isWrappingTokenEntry } from "../wrapping/wrapping-token.js";
import { requestToken } from "../auth/request-token.js";

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
  /**
   * The live token of the request and its entry, or null when it has none (or an unknown,
   * expired or malformed one). It spends nothing: see {@link spendUse}.
   */
  authenticate(request: FastifyRequest): Promise<{ token: string; entry: TokenEntry; caller: Caller } | null>;
  /**
   * Spends one use of a use-limited token (Vault's `UseToken`, atomic across instances), once the
   * request is authorised: a refused request costs its token nothing. Returns the entry after the
   * use, or null when the token is gone meanwhile (its last use spent by another request).
   */
  spendUse(token: string, entry: TokenEntry): Promise<TokenEntry | null>;
  /**
   * Vault's `AllowOperation` for `caller`'s policies; `capabilityCheckOnly` leaves parameter
   * constraints out. The governing rule's wrapping TTLs (ms, 0 or absent for none) come with
   * the answer: the pipeline enforces them.
   */
  allowOperation(
    caller: Caller,
    check: AclCheck,
    capabilityCheckOnly: boolean,
  ): Promise<{ allowed: boolean; sudo: boolean; minWrappingTtlMs?: number; maxWrappingTtlMs?: number }>;
}

/** What the pipeline needs to accept response wrapping (see {@link RequestPipelineOptions.wrapping}). */
export interface PipelineWrapping {
  /** The server's `max_lease_ttl`, ms: a wrap TTL above it is capped to it. */
  maxTtlMs: number;
  /**
   * The request's own token when it is a live response-wrapping token, looked up without taking
   * its use (the unwrap endpoint takes it); null otherwise.
   */
  wrappingTokenSession(request: FastifyRequest): Promise<{ token: string; entry: TokenEntry; caller: Caller } | null>;
}

/** Options of {@link installRequestPipeline}. */
export interface RequestPipelineOptions {
  /** Paths whose requests are not audited (health checks, when so configured). */
  unaudited: ReadonlySet<string>;
  /**
   * Response wrapping. Without it, a request with `X-Vault-Wrap-TTL` is refused (400): the
   * header is never ignored, which would answer the response unwrapped. With it, the caller
   * must also install the wrapping hook (`wrapping/wrap-response-hook.ts`) before the audit.
   */
  wrapping?: PipelineWrapping;
}

// The canonical target of each raw request, made once by `rewriteUrl` before routing, with
// the URL as sent (Fastify replaces `raw.url` with the rewritten one).
const targets = new WeakMap<IncomingMessage, { sent: string; target: CanonicalTarget | VaultError | undefined }>();

/** Where targets that no route may serve are routed: a path no route matches. */
const NO_ROUTE = "/-/no-route";

/**
 * Fastify's `rewriteUrl`: canonicalises the request target once (see `canonical-path.ts`) and
 * routes on that canonical form. Anything else is routed to no route at all, whatever the
 * router would have made of it (it decodes `/v%31/` into `/v1/` and drops the scheme and
 * host of an absolute-form target): a target outside `/v1/` is a 404, one that cannot be
 * canonicalised a 400 (with an audit row either way).
 */
export function canonicalRewriteUrl(raw: IncomingMessage): string {
  const url = raw.url ?? "/";
  const target = canonicalTarget(url);
  targets.set(raw, { sent: url, target });
  if (target === undefined) return NO_ROUTE;
  if (!(target instanceof VaultError)) return routingUrl(target);
  // The query is kept, so that a refused list request is still described (and audited) as one.
  const question = url.indexOf("?");
  return `${NO_ROUTE}${question < 0 ? "" : url.slice(question)}`;
}

/** Whether the request was a `LIST` (rewritten to `GET ?list=true` by this process, never a client's header). */
function sentAsList(request: FastifyRequest): boolean {
  return request.headers[ORIGINAL_METHOD_HEADER.toLowerCase()] === ORIGINAL_METHOD_LIST;
}

/** A route as registered: its method, its Fastify URL and its Vault declaration. */
export interface DeclaredRoute {
  method: string;
  url: string;
  spec: VaultRouteSpec;
}

const DECLARED_ROUTES = new WeakMap<FastifyInstance, readonly DeclaredRoute[]>();

/** The token use each authorised request spends once its parameters are checked too (preHandler). */
const PENDING_USES = new WeakMap<FastifyRequest, () => Promise<void>>();

/**
 * Every route registered on `app` since {@link installRequestPipeline}, with its declaration:
 * what the server answers, read from the same declarations the pipeline enforces (the Vault
 * compatibility table is generated from it).
 */
export function declaredRoutes(app: FastifyInstance): readonly DeclaredRoute[] {
  return DECLARED_ROUTES.get(app) ?? [];
}

/**
 * The one place where requests are described, authenticated and authorised, before any body
 * is read or any handler runs:
 *
 * 1. `onRequest` takes the canonical path made by {@link canonicalRewriteUrl}, applies the
 *    route's resource canonical form, and sets `request.egide` (operation, path, method):
 *    what the ACL checks, what the handler acts on, and what the audit row and metrics record.
 *    Then, by the route's declared access, it refuses a sealed server, reads the token, and
 *    checks the ACL capabilities (with Vault's existence check for create vs update), and the
 *    path's wrapping TTLs against `X-Vault-Wrap-TTL` (parsed first; see `wrapping/`). All of
 *    this happens before the body is read, so an unauthenticated client costs no buffering.
 * 2. `preHandler` checks the policies' parameter constraints against the parsed body (or the
 *    query of a read).
 *
 * Every route must carry a declaration (`config.vault`): registering one without fails.
 */
export function installRequestPipeline(app: FastifyInstance, authorizer: RequestAuthorizer, options: RequestPipelineOptions): void {
  const declared: DeclaredRoute[] = [];
  DECLARED_ROUTES.set(app, declared);
  app.addHook("onRoute", (route: RouteOptions) => {
    const config = route.config as { vault?: VaultRouteSpec } | undefined;
    if (config?.vault === undefined) {
      throw new Error(
        `route ${String(route.method)} ${route.url} has no Vault route declaration (config.vault); every route must declare its path template and access`,
      );
    }
    for (const method of [route.method].flat()) declared.push({ method, url: route.url, spec: config.vault });
  });

  app.decorateRequest("egide", null as never);
  app.addHook("onRequest", async (request, reply) => {
    const canonical = targets.get(request.raw);
    const target = canonical?.target;
    // A LIST (rewritten to `GET ?list=true` by this process) is a list whatever else its query
    // says; a GET is one when its first `list` value is true for Go's ParseBool, as in Vault.
    const read = request.method === "GET" || request.method === "HEAD";
    const listAsked = read ? (sentAsList(request) ? true : listParameter(request)) : false;
    const list = listAsked === true;
    const path = target === undefined || target instanceof VaultError ? printableRawPath(canonical?.sent ?? request.raw.url) : target.path;
    request.egide = {
      operation: operationOf(request.method, list),
      path,
      method: sentAsList(request) ? "LIST" : request.method,
      caller: undefined,
      session: undefined,
      audited: false,
      skipAudit: false,
    };
    // Nothing here is cacheable: secrets, tokens, and answers that depend on the token.
    void reply.header("cache-control", "no-store");
    if (target instanceof VaultError) throw target;
    if (listAsked === "invalid") throw badRequest("the list parameter must be a boolean (true, false, 1, 0, t, f, …)");
    // Vault's X-Vault-Wrap-TTL: parsed (and refused when malformed) before anything runs.
    const wrapTtlMs = parseWrapTtlHeader(request.headers[WRAP_TTL_HEADER]);
    if (wrapTtlMs !== undefined && options.wrapping === undefined) {
      throw badRequest("response wrapping (X-Vault-Wrap-TTL) is not supported by this server; the request was not run");
    }
    const spec = routeSpec(request);
    // No route, or a route reached by a target that was not canonicalised: Vault's 404, before
    // any body is read. The path must also be one the route's template can name (defence in
    // depth: a handler never sees a path outside its own prefix).
    if (spec === undefined || target === undefined || !path.startsWith(staticPrefix(spec.template))) throw notFound();
    let resource = spec.canonical ? spec.canonical(path) : path;
    // Vault lists (and checks the list capability on) the path with a trailing slash. A list
    // request stays a list whatever the route: on a route without a list handler it is checked
    // as a list and then refused (405, thrown at the end of each branch below), never served
    // as the route's fixed operation on a path it was not checked on.
    if (list && !resource.endsWith("/")) resource += "/";
    request.egide.path = resource;
    if (spec.operation !== undefined && !list) request.egide.operation = spec.operation;
    const unsupportedList = list && spec.list !== true;
    // Health checks may go unaudited (when so configured): only their own public reads.
    request.egide.skipAudit =
      spec.access === "public" && !list && (request.method === "GET" || request.method === "HEAD") && options.unaudited.has(resource);
    assertNotCrossSite(request, spec);
    if (wrapTtlMs !== undefined && options.wrapping !== undefined) {
      // Unauthenticated endpoints may not make the server store anything for anyone, but
      // logins, whose credentials authenticate the request (Vault wraps login answers).
      if (spec.access === "public" && !resource.startsWith("auth/"))
        throw badRequest("response wrapping is not available on this endpoint");
      setRequestWrapping(request, wrapTtlMs, Math.min(wrapTtlMs, options.wrapping.maxTtlMs));
    }

    if (spec.access === "public") {
      if (unsupportedList) throw unsupportedOperation();
      return;
    }
    if (authorizer.sealed) throw sealedError();
    // A wrapping token presented to unwrap is not spent here: the unwrap spends it in the same
    // transaction as it reads and deletes the wrapped response.
    const unwrapping = resource === UNWRAP_PATH && request.method !== "GET" && options.wrapping !== undefined;
    const wrappingSession = unwrapping ? await options.wrapping?.wrappingTokenSession(request) : null;
    const authenticated = wrappingSession ?? (await authorizer.authenticate(request));
    // Vault validates the wrapping token of an unwrap before the request's token: a token that
    // is no live token is an invalid wrapping token there (400), whatever else it is.
    if (authenticated === null) throw unwrapping && requestToken(request) !== undefined ? invalidWrappingToken() : permissionDenied();
    // A wrapping token can do nothing but unwrap (its policy says so too; "token" routes do
    // not ask the policy). Used anywhere else, it was spent above, as in Vault.
    if (isWrappingTokenEntry(authenticated.entry) && resource !== UNWRAP_PATH) {
      await authorizer.spendUse(authenticated.token, authenticated.entry);
      throw permissionDenied();
    }
    const isRoot = authenticated.caller.policies.includes("root");
    const session: RequestSession = { ...authenticated, sudo: isRoot, isRoot };
    request.egide.caller = authenticated.caller;
    request.egide.session = session;
    // Once wholly authorised (parameter constraints included, in preHandler), a use-limited
    // token spends a use; the unwrap spends a wrapping token's own use in its transaction.
    const spend = async () => {
      if (wrappingSession) return;
      const entry = await authorizer.spendUse(authenticated.token, authenticated.entry);
      if (entry === null) throw permissionDenied();
      request.egide.session = { ...request.egide.session, ...session, entry };
    };
    if (spec.access === "token" || isRoot) {
      if (isRoot && spec.exists && isWrite(request.method))
        request.egide.operation = (await spec.exists(resource, request)) ? "update" : "create";
      if (unsupportedList) throw unsupportedOperation();
      PENDING_USES.set(request, spend);
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
    // The path's min_wrapping_ttl / max_wrapping_ttl, against the TTL asked for (Vault denies,
    // as for any rule the request does not satisfy).
    if (!wrappingTtlAllowed(result, wrapTtlMs)) throw permissionDenied();
    session.sudo = result.sudo;
    if (unsupportedList) throw unsupportedOperation();
    PENDING_USES.set(request, spend);
  });

  app.addHook("preHandler", async (request) => {
    const session = request.egide.session;
    const spec = routeSpec(request);
    if (session !== undefined && !session.isRoot && spec?.access === "acl") {
      const { operation, path } = request.egide;
      const data = parametersOf(request, operation);
      if (data !== undefined) {
        const result = await authorizer.allowOperation(session.caller, { path, operation, data }, false);
        if (!result.allowed) throw permissionDenied();
      }
    }
    const spend = PENDING_USES.get(request);
    PENDING_USES.delete(request);
    await spend?.();
  });
}

/**
 * The parameters policies constrain: the query's fields (without `list`), and for writes the
 * body's too (a write may take a parameter from its query, like a restore's `force`).
 */
function parametersOf(request: FastifyRequest, operation: Operation): Record<string, unknown> | undefined {
  if (operation !== "read" && operation !== "create" && operation !== "update" && operation !== "patch") return undefined;
  // Own properties only, defined (not assigned): a body key `__proto__` is a parameter like any
  // other and is checked (Object.assign would set the prototype and hide it from the check).
  const entries = Object.entries((request.query as Record<string, unknown> | undefined) ?? {}).filter(([name]) => name !== "list");
  const body = request.body;
  if (operation !== "read" && typeof body === "object" && body !== null && !Array.isArray(body) && !(Symbol.asyncIterator in body)) {
    entries.push(...Object.entries(body));
  }
  return Object.fromEntries(entries);
}

/** The part of a route template before its first parameter (`sys/mounts/` of `sys/mounts/:path`). */
function staticPrefix(template: string): string {
  let end = template.length;
  for (const marker of [":", "<", "*"]) {
    const at = template.indexOf(marker);
    if (at >= 0 && at < end) end = at;
  }
  return template.slice(0, end);
}

function isWrite(method: string): boolean {
  return method === "POST" || method === "PUT";
}

/**
 * A browser sends `text/plain`, form and multipart bodies (or a body without a Content-Type)
 * across sites without asking first. So state-changing `sys/` routes refuse what a browser
 * says is cross-site, take JSON bodies only as `application/json` (or, with a token, without a
 * Content-Type, as Vault's clients send them, or with any Content-Type and an empty body), and
 * the unauthenticated ones (init, unseal),
 * which no token protects, need `application/json` or Vault's `X-Vault-Request` header, which
 * a cross-site request cannot carry without a preflight.
 */
function assertNotCrossSite(request: FastifyRequest, spec: VaultRouteSpec): void {
  if (request.method === "GET" || request.method === "HEAD" || !request.egide.path.startsWith("sys/")) return;
  const site = request.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none")
    throw new VaultError(403, "cross-site requests to sys/ endpoints are refused");
  if ((spec.body ?? "json") !== "json") return;
  const header = request.headers["content-type"];
  if (header === undefined) {
    if (spec.access === "public" && request.headers["x-vault-request"] === undefined) {
      throw new VaultError(415, "this endpoint takes a JSON body: send Content-Type: application/json (or the X-Vault-Request header)");
    }
    return;
  }
  // A request with a token and no body at all (Content-Length: 0, as some clients send an
  // unwrap or a seal with a form Content-Type) holds nothing a cross-site form could have put
  // there, and its token is a header no cross-site request can carry.
  if (spec.access !== "public" && request.headers["content-length"] === "0" && request.headers["transfer-encoding"] === undefined) return;
  const semicolon = header.indexOf(";");
  const mediaType = (semicolon < 0 ? header : header.slice(0, semicolon)).trim().toLowerCase();
  if (mediaType !== "application/json") {
    throw new VaultError(
      415,
      `sys/ endpoints take JSON bodies: send Content-Type: application/json (got ${JSON.stringify(header.slice(0, 100))})`,
    );
  }
}

// A target outside the API, or one refused, is audited as sent (without `/v1/` or the leading
// `/`), bounded; audit-entry percent-encodes control characters.
function printableRawPath(url: string | undefined): string {
  const raw = (url ?? "").split("?")[0] ?? "";
  return (raw.startsWith("/v1/") ? raw.slice(4) : raw.startsWith("/") ? raw.slice(1) : raw).slice(0, 1024);
}
