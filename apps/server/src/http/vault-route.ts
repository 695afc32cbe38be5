import type { FastifyRequest } from "fastify";
import type { Operation } from "../server-context.js";

/**
 * Who may call a route:
 * - `public`: anyone, sealed or not (health, seal status, init, unseal);
 * - `token`: any live token (the route itself only acts on that token or on nothing secret);
 * - `acl`: a token whose policies allow the request's operation on its canonical path.
 */
export type RouteAccess = "public" | "token" | "acl";

/**
 * What a route declares about itself, in its Fastify `config.vault`. The request pipeline
 * (`request-pipeline.ts`) reads it to canonicalise, describe, authorise and audit every request
 * before the route's handler runs; handlers never authorise on their own, and a route
 * registered without a declaration is refused at start-up.
 */
export interface VaultRouteSpec {
  /** The Vault path template the route serves, as Vault's API documentation spells it (`sys/mounts/:path`). */
  template: string;
  access: RouteAccess;
  /**
   * The operation, when the method does not decide it (Vault's default: GET → read, or list for
   * a list request; POST/PUT → update, or create after an existence check; PATCH → patch;
   * DELETE → delete).
   */
  operation?: Operation;
  /**
   * Whether the route answers list requests (`LIST`, `GET ?list=true`). A list request to a
   * route without it is Vault's 405, after the list capability was checked; a route that fixes
   * its `operation` treats a list request as that operation.
   */
  list?: boolean;
  /** Whether `sudo` is needed on the path too (Vault's root-protected paths). */
  sudo?: boolean;
  /**
   * The resource's canonical form of the (already generically canonical) path, for resources
   * whose names have one: policy names are lower case, mount paths have no trailing slash. It
   * returns the canonical path or throws a 400 for a name that has none. Runs before the
   * authorisation, so the check, the handler and the audit row see its result.
   */
  canonical?: (path: string) => string;
  /**
   * Vault's existence check, for POST/PUT: the operation is `create` when the target does not
   * exist, `update` otherwise. Only asked once the caller holds `create` or `update` on the path.
   */
  exists?: (path: string, request: FastifyRequest) => Promise<boolean>;
  /**
   * How the body is taken: `json` (the default) or `stream` (the route reads the raw body
   * itself, e.g. a backup upload). State-changing `sys/` routes take `json` bodies only with
   * `Content-Type: application/json` or none, so that a cross-site form cannot reach them.
   */
  body?: "json" | "stream";
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route's declaration (see {@link VaultRouteSpec}). */
    vault?: VaultRouteSpec;
  }
}

/** The declaration of the route `request` matched, if it has one. */
export function routeSpec(request: FastifyRequest): VaultRouteSpec | undefined {
  return (request.routeOptions.config as { vault?: VaultRouteSpec } | undefined)?.vault;
}
