import { MissingHmacKeyError } from "../auth-methods/secret-id-hash.js";
import { LoginLockout } from "../auth-methods/login-lockout.js";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Counter } from "prom-client";
import type { TokenStore } from "../auth/token-store.js";
import { AUTH_METHOD_BACKENDS } from "../auth-methods/auth-method-backends.js";
import type { AuthMethodBackend, AuthMethodCall, AuthMethodRoute } from "../auth-methods/auth-method-call.js";
import { type AuthMount, AuthMountTable, authMountStoragePrefix } from "../auth-methods/auth-mount-table.js";
import { HashLimiter } from "../auth-methods/hash-limiter.js";
import { LOGIN_CONSTRAINT, LOGIN_CONSTRAINT_VALUE, loginRouteConstraint } from "../auth-methods/login-route-constraint.js";
import type { SystemTokenLimits } from "../auth-methods/login-token.js";
import type { EgideContext } from "../egide-context.js";
import { dispatchPath, pathMethod } from "../engines/path-table.js";
import { VaultError, notFound, permissionDenied, sealedError } from "../http/vault-error.js";
import { bodyObject } from "../kv/kv-input.js";
import { noHandlerForRoute, unsupportedPath } from "./logical-routes.js";
import { registerSysAuthRoutes } from "./sys-auth-routes.js";

/** What the auth method routes use of the server context. */
export type AuthMethodRoutesContext = Pick<EgideContext, "storage" | "mutate" | "metrics" | "sealed">;

/** Options of {@link registerAuthMethodRoutes}. */
export interface AuthMethodRouteOptions {
  tokens: TokenStore;
  authMounts: AuthMountTable;
  limits: SystemTokenLimits;
  /** The password-hash semaphore (default: 2 at once, 16 waiting). */
  hashes?: HashLimiter;
  /** The failed-login lockout (default: Vault's, 5 failures lock a name out for 15 minutes). */
  lockout?: LoginLockout;
}

/** The largest login request body accepted (the credentials are at most a few KiB). */
export const LOGIN_BODY_LIMIT = 16 * 1024;

/**
 * Serves `auth/<mount>/...` for every enabled auth method (the static `auth/token/...` routes
 * win over these, as Fastify prefers static segments). Two routes share the `/v1/auth/*` URL:
 *
 * - the login route (`POST`/`PUT` to an enabled method's login path, told apart by the
 *   {@link loginRouteConstraint}): public, with a small body limit; its handler resolves the
 *   path again and serves nothing but a login;
 * - the ACL route (everything else): a token whose policies allow the operation on the
 *   canonical path `auth/<mount>/...`, with Vault's existence check (create vs update) for
 *   roles and users.
 *
 * The handler finds the method by longest prefix and runs its path table's handler for the
 * path and method; writes go through `ctx.mutate` after checking the method is still enabled.
 */
export function registerAuthMethodRoutes(app: FastifyInstance, ctx: AuthMethodRoutesContext, options: AuthMethodRouteOptions): void {
  const { authMounts } = options;
  const hashesRun = new Counter({
    name: "egide_auth_password_hashes_total",
    help: "Password hashes computed by the userpass auth method (logins, unknown users included, and password changes).",
    registers: [ctx.metrics],
  });
  const hashesRefused = new Counter({
    name: "egide_auth_password_hashes_refused_total",
    help: "Password checks refused with 429 because too many were already running or waiting.",
    registers: [ctx.metrics],
  });
  const guards: LoginGuards = {
    hashes: options.hashes ?? new HashLimiter({ onRun: () => hashesRun.inc(), onRefuse: () => hashesRefused.inc() }),
    lockout: options.lockout ?? new LoginLockout(),
  };

  app.addConstraintStrategy(loginRouteConstraint(authMounts) as never);

  app.route({
    method: ["POST", "PUT"],
    url: "/v1/auth/*",
    constraints: { [LOGIN_CONSTRAINT]: LOGIN_CONSTRAINT_VALUE },
    bodyLimit: LOGIN_BODY_LIMIT,
    config: { vault: { template: "auth/<mount>/login", access: "public", operation: "update" } },
    handler: async (request, reply) => {
      if (ctx.sealed) throw sealedError();
      const target = await resolve(authMounts, request.egide.path);
      // Served without a token: only a login, whatever the routing decided.
      if (!target.backend.isLogin(target.route.kind)) throw permissionDenied();
      return dispatch(ctx, options, guards, target, request, reply);
    },
  });

  app.route({
    method: ["GET", "POST", "PUT", "DELETE"],
    url: "/v1/auth/*",
    config: {
      vault: {
        template: "auth/<mount>/*",
        access: "acl",
        list: true,
        exists: async (path) => {
          const target = await resolve(authMounts, path).catch(() => null);
          if (target === null) return true;
          return target.backend.exists(ctx.storage, authMountStoragePrefix(target.mount), target.route);
        },
      },
    },
    handler: async (request, reply) => dispatch(ctx, options, guards, await resolve(authMounts, request.egide.path), request, reply),
  });
}

interface Target {
  path: string;
  mount: AuthMount;
  backend: AuthMethodBackend;
  route: AuthMethodRoute<string>;
}

/** The method and route of a canonical `auth/...` path: Vault's 404s otherwise. */
async function resolve(mounts: AuthMountTable, path: string): Promise<Target> {
  if (!path.startsWith("auth/")) throw notFound();
  const match = await mounts.find(path.slice("auth/".length));
  if (match === null) throw noHandlerForRoute(path);
  const backend = AUTH_METHOD_BACKENDS[match.mount.type];
  const route = backend.route(match.rest);
  if (route === null) throw unsupportedPath();
  return { path, mount: match.mount, backend, route };
}

/** What stands between an anonymous client and the password hashes. */
interface LoginGuards {
  hashes: HashLimiter;
  lockout: LoginLockout;
}

function dispatch(
  ctx: AuthMethodRoutesContext,
  options: AuthMethodRouteOptions,
  guards: LoginGuards,
  target: Target,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const { mount, path } = target;
  const method = pathMethod(request.method, request.egide.operation === "list");
  const call: AuthMethodCall = {
    request,
    reply,
    mount,
    prefix: authMountStoragePrefix(mount),
    name: target.route.name,
    body: method === "GET" || method === "LIST" ? {} : bodyObject(request.body),
    storage: ctx.storage,
    tokens: options.tokens,
    limits: options.limits,
    hashes: guards.hashes,
    lockout: guards.lockout,
    mutate: async (status, fn) => {
      try {
        return await ctx.mutate(request, status, async (tx) => {
          if (!(await options.authMounts.isMounted(tx, mount))) throw noHandlerForRoute(path);
          return fn(tx);
        });
      } catch (error) {
        // Disabled by another instance meanwhile: read the table again next time.
        if (error instanceof VaultError && error.status === 404) options.authMounts.invalidate();
        throw error;
      }
    },
  };
  return dispatchPath(target.backend.paths, target.route.kind, method, call).catch(async (error: unknown) => {
    // A method disabled by another instance within this one's cache period: its data is gone.
    // That is Vault's 404 for a path no method serves, not a server error; a method still
    // mounted without its key is damaged, and stays a 500.
    if (error instanceof MissingHmacKeyError && !(await options.authMounts.isMounted(ctx.storage, mount))) {
      options.authMounts.invalidate();
      throw noHandlerForRoute(path);
    }
    throw error;
  });
}

/** Options of {@link registerAuthMethods}: the server's token TTL limits (its `[tokens]` configuration). */
export interface AuthMethodsOptions {
  tokens: TokenStore;
  defaultTtlMs: number;
  maxTtlMs: number;
}

/**
 * Auth methods as mounts, composed in one call for `start-server.ts`: the auth mount table
 * (through the barrier), `sys/auth` and the `auth/<mount>/...` dispatcher. Returns the table.
 */
export function registerAuthMethods(
  app: FastifyInstance,
  ctx: AuthMethodRoutesContext & Partial<Pick<EgideContext, "coherence">>,
  options: AuthMethodsOptions,
): AuthMountTable {
  const authMounts = new AuthMountTable(ctx.storage, { systemMaxTtlMs: options.maxTtlMs, coherence: ctx.coherence });
  const limits: SystemTokenLimits = { defaultTtlMs: options.defaultTtlMs, maxTtlMs: options.maxTtlMs };
  registerSysAuthRoutes(app, ctx, { authMounts, tokens: options.tokens, limits });
  registerAuthMethodRoutes(app, ctx, { authMounts, tokens: options.tokens, limits });
  return authMounts;
}
