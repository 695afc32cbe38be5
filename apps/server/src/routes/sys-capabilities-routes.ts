import type { FastifyInstance, FastifyRequest } from "fastify";
import type { EgideContext } from "../egide-context.js";
import { badRequest, permissionDenied } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { bodyObject, field } from "../kv/kv-input.js";
import type { Acl } from "../policy/acl.js";

/** The most paths one request may ask about (each costs an ACL lookup). */
export const MAX_CAPABILITY_PATHS = 256;
/** The longest path accepted (Vault paths are storage keys: at most 1,024 bytes; characters bound it here). */
const MAX_PATH_LENGTH = 4096;

/**
 * Vault's `sys/capabilities` (a token's capabilities, named by the token), `sys/capabilities-self`
 * (the caller's) and `sys/capabilities-accessor` (a token named by its accessor): for each of
 * `paths` (or the deprecated `path`; a list, or a comma-separated string), the sorted
 * capabilities, `["root"]` for a root token, `["deny"]` where nothing is granted; with one path,
 * also under `capabilities`, as Vault keeps for older clients. The answer is in `data` and, as
 * Vault's other `sys/` answers, at the top level too. All three need `update` on their path.
 */
export function registerCapabilitiesRoutes(app: FastifyInstance, ctx: EgideContext): void {
  const route = (template: string): { config: { vault: VaultRouteSpec } } => ({
    config: { vault: { template, access: "acl", operation: "update" } },
  });

  const answer = async (request: FastifyRequest, policies: readonly string[], paths: string[]) => {
    const acl = await ctx.policies.acl(policies);
    // Paths are the client's strings (even "__proto__"): fromEntries makes each an own property.
    const entries = paths.map((path): [string, string[]] => [path, capabilityNames(acl, path, policies.length)]);
    if (entries.length === 1) entries.push(["capabilities", (entries[0] as [string, string[]])[1]]);
    const data: Record<string, string[]> = Object.fromEntries(entries);
    return { ...data, ...vaultResponse(request, data) };
  };

  const byToken = async (request: FastifyRequest) => {
    const body = bodyObject(request.body);
    const paths = pathsOf(body);
    const token = field(body, "token");
    if (typeof token !== "string" || token === "") throw badRequest("missing token");
    const entry = await ctx.tokens.lookup(token);
    if (entry === null) throw badRequest("invalid token");
    return answer(request, entry.policies, paths);
  };
  app.post("/v1/sys/capabilities", route("sys/capabilities"), byToken);
  app.put("/v1/sys/capabilities", route("sys/capabilities"), byToken);

  const self = async (request: FastifyRequest) => {
    const session = request.egide.session;
    if (session === undefined) throw permissionDenied();
    return answer(request, session.caller.policies, pathsOf(bodyObject(request.body)));
  };
  app.post("/v1/sys/capabilities-self", route("sys/capabilities-self"), self);
  app.put("/v1/sys/capabilities-self", route("sys/capabilities-self"), self);

  const byAccessor = async (request: FastifyRequest) => {
    const body = bodyObject(request.body);
    const paths = pathsOf(body);
    const accessor = field(body, "accessor");
    if (typeof accessor !== "string" || accessor === "") throw badRequest("accessor not provided");
    const found = await ctx.tokens.lookupAccessor(accessor);
    if (found === null) throw badRequest("invalid accessor");
    return answer(request, found.entry.policies, paths);
  };
  app.post("/v1/sys/capabilities-accessor", route("sys/capabilities-accessor"), byAccessor);
  app.put("/v1/sys/capabilities-accessor", route("sys/capabilities-accessor"), byAccessor);
}

/** Vault's answer for one path: sorted names; `root` for the root ACL; `deny` without any policy or grant. */
function capabilityNames(acl: Acl, path: string, policyCount: number): string[] {
  if (policyCount === 0) return ["deny"];
  if (acl.isRoot) return ["root"];
  return [...acl.capabilities(path)].sort();
}

/** `paths` (or the deprecated `path`): a list of strings or one comma-separated string (Vault's TypeCommaStringSlice). */
function pathsOf(body: Record<string, unknown>): string[] {
  let raw = field(body, "paths");
  if (raw === undefined || raw === null || (Array.isArray(raw) && raw.length === 0) || raw === "") raw = field(body, "path");
  const list = typeof raw === "string" ? (raw === "" ? [] : raw.split(",")) : raw;
  if (list === undefined || list === null) throw badRequest("paths must be supplied");
  if (!Array.isArray(list) || !list.every((path) => typeof path === "string")) throw badRequest("paths must be a list of strings");
  const paths = (list as string[]).map((path) => path.trim()).filter((path) => path !== "");
  if (paths.length === 0) throw badRequest("paths must be supplied");
  if (paths.length > MAX_CAPABILITY_PATHS) throw badRequest(`at most ${MAX_CAPABILITY_PATHS} paths may be asked at once`);
  if (paths.some((path) => path.length > MAX_PATH_LENGTH)) throw badRequest(`a path must be at most ${MAX_PATH_LENGTH} characters`);
  return [...new Set(paths)];
}
