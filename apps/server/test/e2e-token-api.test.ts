/**
 * End to end: every endpoint of Vault's token auth method API (website/content/api-docs/auth/
 * token.mdx), each with the documented request, answered with the documented shape, status
 * and field types, over real HTTP on a real server, over a SQLite file and a PostgreSQL database.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type JsonBody, startTestServer, type TestServer } from "@egide/test-server";
import { TOKEN_LOOKUP_KEYS, VAULT_ENVELOPE_KEYS } from "./support/vault-response-keys.js";

const AUTH_KEYS = [
  "accessor",
  "client_token",
  "entity_id",
  "lease_duration",
  "metadata",
  "mfa_requirement",
  "num_uses",
  "orphan",
  "policies",
  "renewable",
  "token_policies",
  "token_type",
];
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function expectEnvelope(body: JsonBody): void {
  expect(Object.keys(body).sort()).toEqual(VAULT_ENVELOPE_KEYS);
  expect(body).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, wrap_info: null });
  expect(body.request_id).toEqual(expect.any(String));
}

function expectAuth(auth: JsonBody): void {
  expect(Object.keys(auth).sort()).toEqual(AUTH_KEYS);
  expect(auth).toMatchObject({ entity_id: "", token_type: "service", mfa_requirement: null });
  expect(typeof auth.client_token).toBe("string");
  expect(typeof auth.accessor).toBe("string");
  expect(Number.isInteger(auth.lease_duration)).toBe(true);
  expect(typeof auth.renewable).toBe("boolean");
  expect(typeof auth.orphan).toBe("boolean");
  expect(Array.isArray(auth.policies)).toBe(true);
}

function expectLookup(data: JsonBody): void {
  expect(
    Object.keys(data)
      .filter((k) => TOKEN_LOOKUP_KEYS.includes(k))
      .sort(),
  ).toEqual(TOKEN_LOOKUP_KEYS);
  expect(Number.isInteger(data.creation_time)).toBe(true);
  expect(Number.isInteger(data.creation_ttl)).toBe(true);
  expect(Number.isInteger(data.ttl)).toBe(true);
  expect(Number.isInteger(data.explicit_max_ttl)).toBe(true);
  expect(data.issue_time).toMatch(TIMESTAMP);
  expect(data.type).toBe("service");
}

describe.each([["sqlite"], ["postgresql"]] as const)("token auth API on %s", (storage) => {
  let ts: TestServer;
  const req = (method: string, path: string, token: string | undefined, body?: unknown) =>
    call(ts.url, method, path, { ...(token === undefined ? {} : { token }), ...(body === undefined ? {} : { body }) });
  const root = (method: string, path: string, body?: unknown) => req(method, path, ts.rootToken, body);
  const create = async (body: Record<string, unknown>, token = ts.rootToken) => {
    const reply = await req("POST", "/v1/auth/token/create", token, body);
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    return reply.body.auth as JsonBody;
  };
  const putPolicy = async (name: string, policy: string) => {
    expect((await root("PUT", `/v1/sys/policies/acl/${name}`, { policy })).status).toBe(204);
  };

  beforeAll(async () => {
    ts = await startTestServer({ storage, label: "token-api" });
    await putPolicy("web", `path "secret/data/web/*" { capabilities = ["read"] }`);
    await putPolicy("stage", `path "secret/data/stage/*" { capabilities = ["read"] }`);
    await putPolicy("dev", `path "secret/data/dev/*" { capabilities = ["read"] }`);
    await putPolicy(
      "orphan-maker",
      `path "auth/token/create-orphan" { capabilities = ["update"] }\npath "auth/token/create/*" { capabilities = ["update"] }`,
    );
    await putPolicy("accessor-lister", `path "auth/token/accessors" { capabilities = ["list"] }`);
  }, 60_000);

  afterAll(async () => {
    await ts?.close();
  });

  it("POST auth/token/create: the sample payload answers the sample auth block", async () => {
    const reply = await root("POST", "/v1/auth/token/create", {
      policies: ["web", "stage", "missing-one"],
      meta: { user: "armon" },
      ttl: "1h",
      renewable: true,
    });
    expect(reply.status).toBe(200);
    expectEnvelope(reply.body);
    expect(reply.body.data).toBeNull();
    expect(reply.body.warnings).toEqual(['Policy "missing-one" does not exist']);
    const auth = reply.body.auth;
    expectAuth(auth);
    expect(auth).toMatchObject({
      policies: ["default", "missing-one", "stage", "web"],
      token_policies: ["default", "missing-one", "stage", "web"],
      metadata: { user: "armon" },
      lease_duration: 3600,
      renewable: true,
      orphan: false,
      num_uses: 0,
    });
  });

  it("POST auth/token/create-orphan: no sudo needed, the token has no parent", async () => {
    const maker = await create({ policies: ["orphan-maker", "web"] });
    const reply = await req("POST", "/v1/auth/token/create-orphan", maker.client_token, { policies: ["web"], ttl: "10m" });
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expectAuth(reply.body.auth);
    expect(reply.body.auth.orphan).toBe(true);
    expect(reply.body.auth.lease_duration).toBe(600);
    // create with no_parent still needs sudo
    const refused = await req("POST", "/v1/auth/token/create", maker.client_token, { no_parent: true });
    expect(refused.status).toBe(403); // no update on auth/token/create at all
  });

  it("POST auth/token/create/:role_name: unknown role 400; a role's settings apply", async () => {
    const unknown = await root("POST", "/v1/auth/token/create/nope", {});
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toEqual(["unknown role nope"]);
    expect(
      (await root("POST", "/v1/auth/token/roles/nomad", { allowed_policies: ["dev"], orphan: true, path_suffix: "rev1" })).status,
    ).toBe(204);
    const reply = await root("POST", "/v1/auth/token/create/nomad", {});
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expectAuth(reply.body.auth);
    expect(reply.body.auth).toMatchObject({ policies: ["default", "dev"], orphan: true });
    const self = await req("GET", "/v1/auth/token/lookup-self", reply.body.auth.client_token);
    expect(self.body.data).toMatchObject({ path: "auth/token/create/nomad/rev1", role: "nomad", orphan: true });
  });

  it("POST auth/token/lookup: the sample answers the data, with the token's id", async () => {
    const auth = await create({ policies: ["web"], meta: { username: "tesla" }, ttl: "2h" });
    const reply = await root("POST", "/v1/auth/token/lookup", { token: auth.client_token });
    expect(reply.status).toBe(200);
    expectEnvelope(reply.body);
    expectLookup(reply.body.data);
    expect(reply.body.data).toMatchObject({
      id: auth.client_token,
      accessor: auth.accessor,
      creation_ttl: 7200,
      meta: { username: "tesla" },
      policies: ["default", "web"],
      num_uses: 0,
      orphan: false,
      path: "auth/token/create",
      renewable: true,
    });
    expect(reply.body.data.ttl).toBeGreaterThan(7100);
    expect(reply.body.data.ttl).toBeLessThanOrEqual(7200);
    const missing = await root("POST", "/v1/auth/token/lookup", {});
    expect({ status: missing.status, errors: missing.body.errors }).toEqual({ status: 400, errors: ["missing token ID"] });
  });

  it("GET auth/token/lookup-self: the data of the calling token, id included", async () => {
    const auth = await create({ ttl: "1h" });
    const reply = await req("GET", "/v1/auth/token/lookup-self", auth.client_token);
    expect(reply.status).toBe(200);
    expectLookup(reply.body.data);
    expect(reply.body.data.id).toBe(auth.client_token);
    expect(reply.body.data.creation_ttl).toBe(3600);
  });

  it('POST auth/token/lookup-accessor: the data with id ""; an unknown accessor is 400', async () => {
    const auth = await create({ ttl: "1h" });
    const reply = await root("POST", "/v1/auth/token/lookup-accessor", { accessor: auth.accessor });
    expect(reply.status).toBe(200);
    expectLookup(reply.body.data);
    expect(reply.body.data).toMatchObject({ id: "", accessor: auth.accessor });
    expect(JSON.stringify(reply.body)).not.toContain(auth.client_token);
    const unknown = await root("POST", "/v1/auth/token/lookup-accessor", { accessor: "AAAAAAAAAAAAAAAA" });
    expect({ status: unknown.status, errors: unknown.body.errors }).toEqual({ status: 400, errors: ["invalid accessor"] });
  });

  it("POST auth/token/renew: the token in the body; lease_duration is the TTL granted", async () => {
    const auth = await create({ ttl: "10m", meta: { user: "armon" } });
    const reply = await root("POST", "/v1/auth/token/renew", { token: auth.client_token, increment: "1h" });
    expect(reply.status).toBe(200);
    expectAuth(reply.body.auth);
    expect(reply.body.auth).toMatchObject({
      client_token: auth.client_token,
      lease_duration: 3600,
      renewable: true,
      metadata: { user: "armon" },
    });
    const unknown = await root("POST", "/v1/auth/token/renew", { token: "egs.unknown" });
    expect({ status: unknown.status, errors: unknown.body.errors }).toEqual({ status: 400, errors: ["token not found"] });
  });

  it("POST auth/token/renew-self: increment given, or the creation TTL", async () => {
    const auth = await create({ ttl: "10m" });
    const one = await req("POST", "/v1/auth/token/renew-self", auth.client_token, { increment: "1h" });
    expect(one.status).toBe(200);
    expectAuth(one.body.auth);
    expect(one.body.auth.lease_duration).toBe(3600);
    const two = await req("POST", "/v1/auth/token/renew-self", auth.client_token, {});
    expect(two.body.auth.lease_duration).toBe(600);
  });

  it('POST auth/token/renew-accessor: client_token is ""', async () => {
    const auth = await create({ ttl: "10m" });
    const reply = await root("POST", "/v1/auth/token/renew-accessor", { accessor: auth.accessor, increment: 1800 });
    expect(reply.status).toBe(200);
    expectAuth(reply.body.auth);
    expect(reply.body.auth).toMatchObject({ client_token: "", accessor: auth.accessor, lease_duration: 1800 });
    const lookup = await root("POST", "/v1/auth/token/lookup-accessor", { accessor: auth.accessor });
    expect(lookup.body.data.ttl).toBeGreaterThan(1700);
    expect(Number.isInteger(lookup.body.data.last_renewal_time)).toBe(true);
  });

  it("POST auth/token/revoke, revoke-self, revoke-accessor: 204, the token is gone", async () => {
    const a = await create({});
    expect((await root("POST", "/v1/auth/token/revoke", { token: a.client_token })).status).toBe(204);
    expect((await req("GET", "/v1/auth/token/lookup-self", a.client_token)).status).toBe(403);
    const b = await create({});
    expect((await req("POST", "/v1/auth/token/revoke-self", b.client_token)).status).toBe(204);
    expect((await req("GET", "/v1/auth/token/lookup-self", b.client_token)).status).toBe(403);
    const c = await create({});
    expect((await root("POST", "/v1/auth/token/revoke-accessor", { accessor: c.accessor })).status).toBe(204);
    expect((await req("GET", "/v1/auth/token/lookup-self", c.client_token)).status).toBe(403);
    const again = await root("POST", "/v1/auth/token/revoke-accessor", { accessor: c.accessor });
    expect(again.status).toBe(200);
    expect(again.body.warnings).toEqual(["No token found with this accessor"]);
  });

  it("POST auth/token/revoke-orphan: 204 for root; 400 without sudo; 400 for an unknown token", async () => {
    const a = await create({});
    expect((await root("POST", "/v1/auth/token/revoke-orphan", { token: a.client_token })).status).toBe(204);
    expect((await req("GET", "/v1/auth/token/lookup-self", a.client_token)).status).toBe(403);
    const unknown = await root("POST", "/v1/auth/token/revoke-orphan", { token: a.client_token });
    expect({ status: unknown.status, errors: unknown.body.errors }).toEqual({ status: 400, errors: ["token to revoke not found"] });
    await putPolicy("orphan-revoker", `path "auth/token/revoke-orphan" { capabilities = ["update"] }`);
    const caller = await create({ policies: ["orphan-revoker"] });
    const target = await create({});
    const refused = await req("POST", "/v1/auth/token/revoke-orphan", caller.client_token, { token: target.client_token });
    expect({ status: refused.status, errors: refused.body.errors }).toEqual({
      status: 400,
      errors: ["root or sudo privileges required to revoke and orphan"],
    });
    await putPolicy("orphan-revoker", `path "auth/token/revoke-orphan" { capabilities = ["update", "sudo"] }`);
    expect((await req("POST", "/v1/auth/token/revoke-orphan", caller.client_token, { token: target.client_token })).status).toBe(204);
  });

  it("roles: create (204), read (the sample's shape), list, update keeps unset fields, delete (204, then 404)", async () => {
    // an empty list is Vault's 404 (the role of an earlier case deleted first)
    expect((await root("DELETE", "/v1/auth/token/roles/nomad")).status).toBe(204);
    expect((await root("LIST", "/v1/auth/token/roles")).status).toBe(404);
    const write = await root("POST", "/v1/auth/token/roles/reader", {
      allowed_policies: "web,stage",
      disallowed_policies: ["dev"],
      orphan: false,
      renewable: true,
      token_period: "1h",
      token_explicit_max_ttl: 7200,
      path_suffix: "rev-2",
    });
    expect(write.status, JSON.stringify(write.body)).toBe(204);
    const read = await root("GET", "/v1/auth/token/roles/reader");
    expect(read.status).toBe(200);
    expectEnvelope(read.body);
    expect(read.body.data).toEqual({
      allowed_entity_aliases: [],
      allowed_policies: ["stage", "web"],
      allowed_policies_glob: [],
      disallowed_policies: ["dev"],
      disallowed_policies_glob: [],
      explicit_max_ttl: 0,
      name: "reader",
      orphan: false,
      path_suffix: "rev-2",
      period: 0,
      renewable: true,
      token_explicit_max_ttl: 7200,
      token_no_default_policy: false,
      token_period: 3600,
      token_type: "default-service",
    });
    const deprecated = await root("POST", "/v1/auth/token/roles/reader", { period: 60, orphan: true });
    expect(deprecated.status).toBe(204);
    const after = await root("GET", "/v1/auth/token/roles/reader");
    expect(after.body.data).toMatchObject({
      period: 60,
      token_period: 60,
      orphan: true,
      allowed_policies: ["stage", "web"],
      path_suffix: "rev-2",
    });
    const both = await root("POST", "/v1/auth/token/roles/reader", { period: 60, token_period: 120 });
    expect(both.status).toBe(200);
    expect(both.body.warnings).toEqual(["Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value"]);

    const list = await root("LIST", "/v1/auth/token/roles");
    expect(list.status).toBe(200);
    expect(list.body.data.keys).toContain("reader");
    expect((await root("GET", "/v1/auth/token/roles?list=true")).body.data.keys).toContain("reader");

    expect((await root("DELETE", "/v1/auth/token/roles/reader")).status).toBe(204);
    expect((await root("GET", "/v1/auth/token/roles/reader")).status).toBe(404);
    expect((await root("POST", "/v1/auth/token/roles/bad%20name", {})).status).toBe(400);
    expect((await root("POST", "/v1/auth/token/roles/globby", { allowed_policies_glob: "a*" })).status).toBe(400);
  });

  it("LIST auth/token/accessors: sudo needed; the keys are the live tokens' accessors", async () => {
    const auth = await create({});
    const reply = await root("LIST", "/v1/auth/token/accessors");
    expect(reply.status).toBe(200);
    expectEnvelope(reply.body);
    expect(reply.body.data.keys).toContain(auth.accessor);
    expect(reply.body.data.keys.every((k: unknown) => typeof k === "string")).toBe(true);
    const lister = await create({ policies: ["accessor-lister"] });
    expect((await req("LIST", "/v1/auth/token/accessors", lister.client_token)).status).toBe(403);
    await putPolicy("accessor-lister", `path "auth/token/accessors" { capabilities = ["list", "sudo"] }`);
    expect((await req("LIST", "/v1/auth/token/accessors", lister.client_token)).status).toBe(200);
    expect((await root("GET", "/v1/auth/token/accessors")).status).toBe(405);
  });

  it("POST auth/token/tidy: 202 with Vault's warning", async () => {
    const reply = await root("POST", "/v1/auth/token/tidy");
    expect(reply.status).toBe(202);
    expectEnvelope(reply.body);
    expect(reply.body.warnings).toEqual([
      "Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs.",
    ]);
  });
});
