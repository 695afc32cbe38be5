import type { IncomingMessage } from "node:http";
import { AUTH_METHOD_BACKENDS } from "./auth-method-backends.js";
import { type AuthMountTable, findIn } from "./auth-mount-table.js";

/** The name of the Fastify route constraint that sends login requests to the public login route. */
export const LOGIN_CONSTRAINT = "egideAuthLogin";

/** The constraint value of a request to an enabled method's login path. */
export const LOGIN_CONSTRAINT_VALUE = "login";

/**
 * A Fastify (find-my-way) constraint strategy that tells login requests from the other
 * requests under `/v1/auth/`: which path is a login depends on which method is enabled where
 * (`auth/team/approle/login`, `auth/users/login/alice`), so it is derived, asynchronously,
 * from the (cached) auth mount table. A `POST`/`PUT` to an enabled method's login path is
 * routed to the public login route; everything else to the token-and-ACL route. The login
 * handler resolves the path again and refuses anything that is not a login, so a stale table
 * can only send a login to the ACL route (where it needs a token), never the reverse.
 */
export function loginRouteConstraint(mounts: AuthMountTable) {
  const stores = () => {
    const handlers = new Map<string, unknown>();
    return {
      get: (value: string) => handlers.get(value) ?? null,
      set: (value: string, store: unknown) => {
        handlers.set(value, store);
      },
    };
  };
  return {
    name: LOGIN_CONSTRAINT,
    storage: stores,
    validate(value: unknown): void {
      if (value !== LOGIN_CONSTRAINT_VALUE) throw new Error(`the ${LOGIN_CONSTRAINT} constraint takes only "${LOGIN_CONSTRAINT_VALUE}"`);
    },
    mustMatchWhenDerived: false,
    deriveConstraint(request: IncomingMessage, _context: unknown, done: (error: Error | null, value?: string) => void): void {
      const path = request.method === "POST" || request.method === "PUT" ? authPathOf(request.url) : null;
      if (path === null) {
        done(null, undefined);
        return;
      }
      mounts.list().then(
        (list) => {
          const match = findIn(list, path);
          const route = match === null ? null : AUTH_METHOD_BACKENDS[match.mount.type].route(match.rest);
          done(
            null,
            match !== null && route !== null && AUTH_METHOD_BACKENDS[match.mount.type].isLogin(route.kind)
              ? LOGIN_CONSTRAINT_VALUE
              : undefined,
          );
        },
        // Sealed, or the storage is down: not a login as far as routing goes (the ACL route
        // answers 503 or 403).
        () => done(null, undefined),
      );
    },
  };
}

/**
 * The decoded path below `auth/` of a routing URL (`/v1/auth/...`, each segment
 * percent-encoded once by the request pipeline's rewrite), or null for any other URL.
 */
function authPathOf(url: string | undefined): string | null {
  if (url === undefined || !url.startsWith("/v1/auth/")) return null;
  const question = url.indexOf("?");
  const raw = (question < 0 ? url : url.slice(0, question)).slice("/v1/auth/".length);
  if (raw.startsWith("token/") || raw.length > 4096) return null;
  try {
    return raw.split("/").map(decodeURIComponent).join("/");
  } catch {
    return null;
  }
}
