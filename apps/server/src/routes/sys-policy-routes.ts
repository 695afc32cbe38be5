import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { badRequest, notFound, unsupportedOperation } from "../http/vault-error.js";
import { vaultResponse } from "../http/vault-response.js";
import type { VaultRouteSpec } from "../http/vault-route.js";
import { parsePolicy } from "../policy/parse-policy.js";
import type { PolicyStore } from "../policy/policy-store.js";
import { ROOT_POLICY_NAME, canonicalPolicyName } from "../policy/policy.js";
import type { EgideContext } from "../egide-context.js";

/** What the policy routes use of the server context. */
export type PolicyRoutesContext = Pick<EgideContext, "mutate">;

const RULES_DEPRECATED = "'rules' is deprecated, please use 'policy' instead";

/**
 * Vault's ACL policy endpoints, with Vault's request and response shapes:
 *
 * - `LIST /v1/sys/policies/acl` → `data.keys`; `GET|PUT|POST|DELETE /v1/sys/policies/acl/:name`
 *   (read → `data {name, policy}`; write body `{"policy": text}`, the text optionally base64).
 * - The older `GET /v1/sys/policy` (also as LIST) → `{keys, policies}`;
 *   `GET|PUT|POST|DELETE /v1/sys/policy/:name` (read → `{name, rules}`; write body `policy`, or
 *   the deprecated `rules`, answered 200 with a warning). As in Vault, these two answer their
 *   `data` also at the top level of the body.
 *
 * The request pipeline checks, on the canonical path, the capability of the operation: `list`
 * on `sys/policies/acl/`, `read`, `update` (writes: Vault has no create-vs-update distinction
 * here) or `delete` on `sys/policies/acl/<name>` (`sys/policy/<name>` for the older
 * endpoints). A name's canonical form is lower case (ASCII only): `sys/policy/ADMIN` is checked,
 * audited and acted on as `sys/policy/admin`, and a name with any other character is refused
 * before the check. Writes answer 204 without a body; `root` cannot be written or deleted,
 * `default` cannot be deleted.
 */
export function registerPolicyRoutes(app: FastifyInstance, ctx: PolicyRoutesContext, policies: PolicyStore): void {
  const listable = (template: string): { config: { vault: VaultRouteSpec } } => ({
    config: { vault: { template, access: "acl", list: true } },
  });
  const named = (prefix: string): { config: { vault: VaultRouteSpec } } => ({
    config: { vault: { template: `${prefix}:name`, access: "acl", canonical: (path) => canonicalName(prefix, path) } },
  });
  const nameOf = (request: FastifyRequest, prefix: string) => {
    const rest = request.egide.path.slice(prefix.length);
    return rest.endsWith("/") ? rest.slice(0, -1) : rest;
  };

  // One policy, as both endpoint families read it (a list request on a single policy is 405,
  // from the pipeline after the list check, as Vault orders it); an unknown name 404.
  const readPolicy = async (name: string) => {
    const policy = await policies.get(name);
    if (policy === null) throw notFound();
    return policy;
  };

  // --- /v1/sys/policies/acl ---------------------------------------------------------------

  const ACL_PREFIX = "sys/policies/acl/";
  const listAcl = async (request: FastifyRequest) => {
    if (request.egide.operation !== "list") throw unsupportedOperation();
    return vaultResponse(request, { keys: await policyNames() });
  };
  app.get("/v1/sys/policies/acl", listable("sys/policies/acl"), listAcl);
  app.get("/v1/sys/policies/acl/", listable("sys/policies/acl/"), listAcl);

  app.get("/v1/sys/policies/acl/:name", named(ACL_PREFIX), async (request) => {
    const policy = await readPolicy(nameOf(request, ACL_PREFIX));
    return vaultResponse(request, { name: policy.name, policy: policy.raw });
  });

  const writeAcl = async (request: FastifyRequest, reply: FastifyReply) => {
    const { text } = policyText(request.body, false);
    await write(request, nameOf(request, ACL_PREFIX), text, 204);
    return reply.code(204).send();
  };
  app.put("/v1/sys/policies/acl/:name", named(ACL_PREFIX), writeAcl);
  app.post("/v1/sys/policies/acl/:name", named(ACL_PREFIX), writeAcl);

  app.delete("/v1/sys/policies/acl/:name", named(ACL_PREFIX), async (request, reply) => {
    await remove(request, nameOf(request, ACL_PREFIX));
    return reply.code(204).send();
  });

  app.patch("/v1/sys/policies/acl/:name", named(ACL_PREFIX), async () => {
    throw unsupportedOperation();
  });

  // --- /v1/sys/policy (older endpoints) ------------------------------------------------------

  const LEGACY_PREFIX = "sys/policy/";
  const listLegacy = async (request: FastifyRequest) => {
    const keys = await policyNames();
    return sysResponse(request, { keys, policies: keys });
  };
  app.get("/v1/sys/policy", listable("sys/policy"), listLegacy);
  app.get("/v1/sys/policy/", listable("sys/policy/"), listLegacy);

  app.get("/v1/sys/policy/:name", named(LEGACY_PREFIX), async (request) => {
    const policy = await readPolicy(nameOf(request, LEGACY_PREFIX));
    return sysResponse(request, { name: policy.name, rules: policy.raw });
  });

  const writeLegacy = async (request: FastifyRequest, reply: FastifyReply) => {
    const name = nameOf(request, LEGACY_PREFIX);
    const { text, fromRules } = policyText(request.body, true);
    if (fromRules) {
      // Vault answers the deprecated field with a warning, hence a body and 200.
      await write(request, name, text, 200);
      return vaultResponse(request, null, { warnings: [RULES_DEPRECATED] });
    }
    await write(request, name, text, 204);
    return reply.code(204).send();
  };
  app.put("/v1/sys/policy/:name", named(LEGACY_PREFIX), writeLegacy);
  app.post("/v1/sys/policy/:name", named(LEGACY_PREFIX), writeLegacy);

  app.delete("/v1/sys/policy/:name", named(LEGACY_PREFIX), async (request, reply) => {
    await remove(request, nameOf(request, LEGACY_PREFIX));
    return reply.code(204).send();
  });

  // --- shared -----------------------------------------------------------------------------

  // Vault's order: the stored names, then "root".
  async function policyNames(): Promise<string[]> {
    const names = (await policies.list()).filter((name) => name !== ROOT_POLICY_NAME);
    names.push(ROOT_POLICY_NAME);
    return names;
  }

  async function write(request: FastifyRequest, name: string, text: string, status: number): Promise<void> {
    // Parsed before the transaction, so that it is not held open while the parser runs.
    const parsed = await parsePolicy(name, text);
    await ctx.mutate(request, status, (tx) => policies.write(tx, name, parsed));
    policies.invalidate(parsed.name);
  }

  async function remove(request: FastifyRequest, name: string): Promise<void> {
    await ctx.mutate(request, 204, (tx) => policies.delete(tx, name));
    policies.invalidate(name);
  }
}

/**
 * The canonical request path of a policy: its name in lower case (ASCII letters only; a name
 * that is not one afterwards is a 400 before any authorisation).
 */
function canonicalName(prefix: string, path: string): string {
  const name = path.slice(prefix.length);
  if (name === "") return path;
  const trailing = name.endsWith("/") ? "/" : "";
  return `${prefix}${canonicalPolicyName(trailing ? name.slice(0, -1) : name)}${trailing}`;
}

/**
 * The policy text of a write: `policy`, or (on the older endpoints) the deprecated `rules` when
 * `policy` is empty; decoded when it is valid base64, as Vault does.
 */
function policyText(body: unknown, allowRules: boolean): { text: string; fromRules: boolean } {
  const fields = typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  let value = fields.policy;
  let fromRules = false;
  if (
    (value === undefined || value === null || value === "") &&
    allowRules &&
    fields.rules !== undefined &&
    fields.rules !== null &&
    fields.rules !== ""
  ) {
    value = fields.rules;
    fromRules = true;
  }
  if (value === undefined || value === null || value === "") throw badRequest("'policy' parameter not supplied or empty");
  if (typeof value !== "string") throw badRequest(`'${fromRules ? "rules" : "policy"}' must be a string`);
  return { text: decodeBase64(value) ?? value, fromRules };
}

// Go's base64.StdEncoding.DecodeString: padded standard alphabet, line breaks ignored.
function decodeBase64(text: string): string | null {
  const compact = text.replace(/[\r\n]/g, "");
  if (compact.length === 0 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null;
  return Buffer.from(compact, "base64").toString("utf8");
}

/**
 * Vault's envelope with `data`'s fields also at the top level, as Vault answers its older
 * `sys/` endpoints (`sys/policy` among them).
 */
function sysResponse<T extends Record<string, unknown>>(request: FastifyRequest, data: T): T & ReturnType<typeof vaultResponse<T>> {
  return { ...data, ...vaultResponse(request, data) };
}
