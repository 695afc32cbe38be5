import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { badRequest, notFound, unsupportedOperation } from "../http/vault-error.js";
import { isListRequest, vaultResponse } from "../http/vault-response.js";
import { parsePolicy } from "../policy/parse-policy.js";
import type { PolicyStore } from "../policy/policy-store.js";
import { ROOT_POLICY_NAME } from "../policy/policy.js";
import type { Capability, Operation, ServerContext } from "../server-context.js";

const RULES_DEPRECATED = "'rules' is deprecated, please use 'policy' instead";

type NameRequest = FastifyRequest<{ Params: { name?: string } }>;

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
 * Each request needs, on its own path, the capability of its operation: `list` on
 * `sys/policies/acl/` (which `sys/policies/acl` and `sys/policies/acl/*` rules also grant),
 * `read`, `update` (writes: Vault has no create-vs-update distinction here) or `delete` on
 * `sys/policies/acl/<name>` (`sys/policy` and `sys/policy/<name>` for the older endpoints).
 * Writes answer 204 without a body; `root` cannot be written or deleted, `default` cannot be
 * deleted; names are lower-cased.
 */
export function registerPolicyRoutes(app: FastifyInstance, ctx: ServerContext, policies: PolicyStore): void {
  // One policy, as both endpoint families read it: a list request on a single policy is 405
  // (after the list check, as Vault orders it), an unknown name 404.
  const readPolicy = async (request: NameRequest, path: string, name: string) => {
    if (isListRequest(request)) {
      await check(request, "list", `${path}/`, "list");
      throw unsupportedOperation();
    }
    await check(request, "read", path, "read");
    const policy = await policies.get(name);
    if (policy === null) throw notFound();
    return policy;
  };

  // --- /v1/sys/policies/acl ---------------------------------------------------------------

  const listAcl = async (request: FastifyRequest) => {
    if (!isListRequest(request)) {
      await check(request, "read", "sys/policies/acl", "read");
      throw unsupportedOperation();
    }
    await check(request, "list", "sys/policies/acl/", "list");
    return vaultResponse(request, { keys: await policyNames() });
  };
  app.get("/v1/sys/policies/acl", listAcl);
  app.get("/v1/sys/policies/acl/", listAcl);

  app.get("/v1/sys/policies/acl/:name", async (request: NameRequest) => {
    const name = request.params.name ?? "";
    if (name === "") return listAcl(request);
    const policy = await readPolicy(request, `sys/policies/acl/${name}`, name);
    return vaultResponse(request, { name: policy.name, policy: policy.raw });
  });

  const writeAcl = async (request: NameRequest, reply: FastifyReply) => {
    const name = request.params.name ?? "";
    await check(request, "update", `sys/policies/acl/${name}`, "update");
    const { text } = policyText(request.body, false);
    await write(request, name, text, 204);
    return reply.code(204).send();
  };
  app.put("/v1/sys/policies/acl/:name", writeAcl);
  app.post("/v1/sys/policies/acl/:name", writeAcl);

  app.delete("/v1/sys/policies/acl/:name", async (request: NameRequest, reply) => {
    const name = request.params.name ?? "";
    await check(request, "delete", `sys/policies/acl/${name}`, "delete");
    await remove(request, name);
    return reply.code(204).send();
  });

  app.patch("/v1/sys/policies/acl/:name", async (request: NameRequest) => {
    await check(request, "patch", `sys/policies/acl/${request.params.name ?? ""}`, "patch");
    throw unsupportedOperation();
  });

  // --- /v1/sys/policy (older endpoints) ------------------------------------------------------

  const listLegacy = async (request: FastifyRequest) => {
    if (isListRequest(request)) await check(request, "list", "sys/policy/", "list");
    else await check(request, "read", "sys/policy", "read");
    const keys = await policyNames();
    return sysResponse(request, { keys, policies: keys });
  };
  app.get("/v1/sys/policy", listLegacy);
  app.get("/v1/sys/policy/", listLegacy);

  app.get("/v1/sys/policy/:name", async (request: NameRequest) => {
    const name = request.params.name ?? "";
    if (name === "") return listLegacy(request);
    const policy = await readPolicy(request, `sys/policy/${name}`, name);
    return sysResponse(request, { name: policy.name, rules: policy.raw });
  });

  const writeLegacy = async (request: NameRequest, reply: FastifyReply) => {
    const name = request.params.name ?? "";
    await check(request, "update", `sys/policy/${name}`, "update");
    const { text, fromRules } = policyText(request.body, true);
    if (fromRules) {
      // Vault answers the deprecated field with a warning, hence a body and 200.
      await write(request, name, text, 200);
      return vaultResponse(request, null, { warnings: [RULES_DEPRECATED] });
    }
    await write(request, name, text, 204);
    return reply.code(204).send();
  };
  app.put("/v1/sys/policy/:name", writeLegacy);
  app.post("/v1/sys/policy/:name", writeLegacy);

  app.delete("/v1/sys/policy/:name", async (request: NameRequest, reply) => {
    const name = request.params.name ?? "";
    await check(request, "delete", `sys/policy/${name}`, "delete");
    await remove(request, name);
    return reply.code(204).send();
  });

  // --- shared -----------------------------------------------------------------------------

  async function check(request: FastifyRequest, operation: Operation, path: string, capability: Capability): Promise<void> {
    ctx.describe(request, operation, path);
    await ctx.authorize(request, path, capability);
  }

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
 * The policy text of a write: `policy`, or (on the older endpoints) the deprecated `rules` when
 * `policy` is empty; decoded when it is valid base64, as Vault does.
 */
function policyText(body: unknown, allowRules: boolean): { text: string; fromRules: boolean } {
  const fields = typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  let value = fields.policy;
  let fromRules = false;
  if ((value === undefined || value === null || value === "") && allowRules && fields.rules !== undefined && fields.rules !== null && fields.rules !== "") {
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
