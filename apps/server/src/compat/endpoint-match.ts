import type { PathMethod } from "../engines/path-table.js";
import type { DeclaredRoute } from "../http/request-pipeline.js";
import type { VaultEndpoint, VaultMethod } from "./vault-endpoint-types.js";

/** An endpoint split into its method and its path template (without leading or trailing `/`). */
export interface ParsedEndpoint {
  method: VaultMethod;
  template: string;
}

/** Splits `"POST sys/mounts/:path"` into its method and template. */
export function parseEndpoint(endpoint: VaultEndpoint): ParsedEndpoint {
  const space = endpoint.indexOf(" ");
  return { method: endpoint.slice(0, space) as VaultMethod, template: trimSlashes(endpoint.slice(space + 1)) };
}

/** A template without its leading and trailing `/` (`sys/policies/acl/` is `sys/policies/acl`). */
export function trimSlashes(template: string): string {
  let start = 0;
  let end = template.length;
  while (start < end && template[start] === "/") start++;
  while (end > start && template[end - 1] === "/") end--;
  return template.slice(start, end);
}

/** The segments of a template, each parameter (`:role_name`) reduced to `:` so that names do not count. */
function shape(template: string): string[] {
  const trimmed = trimSlashes(template);
  return trimmed === "" ? [] : trimmed.split("/").map((segment) => (segment.startsWith(":") ? ":" : segment));
}

/**
 * Whether a route's template names the endpoint template `vault`: the same segments, any
 * parameter matching any parameter. When `rest` is true (a Fastify route ending in `*` whose
 * template ends with a parameter, as `sys/mounts/:path` on `/v1/sys/mounts/*`), that last
 * parameter also takes what follows it, as Vault's own `:path` does (`sys/mounts/:path/tune`).
 */
export function templateMatches(route: string, vault: string, rest = false): boolean {
  const own = shape(route);
  const other = shape(vault);
  const last = own.length - 1;
  const greedy = rest && last >= 0 && own[last] === ":";
  if (greedy ? other.length < own.length : other.length !== own.length) return false;
  return own.every((segment, index) => segment === other[index]);
}

/** Whether a declared route's last parameter takes the rest of the path (see {@link templateMatches}). */
export function takesRest(route: DeclaredRoute): boolean {
  return route.url.endsWith("*") && shape(route.spec.template).at(-1) === ":";
}

/**
 * Whether a declared route serves `endpoint`: the same template (see {@link templateMatches})
 * and the method as Vault means it: `POST` is `POST` or `PUT`, `LIST` a `GET` route that
 * answers list requests, `HEAD` a `HEAD` or `GET` route (Fastify answers HEAD for every GET).
 */
export function routeServes(route: DeclaredRoute, endpoint: ParsedEndpoint): boolean {
  if (!templateMatches(route.spec.template, endpoint.template, takesRest(route))) return false;
  switch (endpoint.method) {
    case "POST":
      return route.method === "POST" || route.method === "PUT";
    case "LIST":
      return route.method === "GET" && route.spec.list === true;
    case "HEAD":
      return route.method === "HEAD" || route.method === "GET";
    default:
      return route.method === endpoint.method;
  }
}

/** The Vault method a path table's method stands for (`PUT` is Vault's `POST`). */
export function vaultMethodOf(method: PathMethod): VaultMethod {
  return method === "PUT" ? "POST" : method;
}
