import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startTestServer, type TestServer } from "@egide/test-server";
import { databaseBytes, decryptedStorageText } from "./support/stored-bytes.js";

// AppRole end to end over SQLite and PostgreSQL, with real HTTP: Vault's request and response
// shapes per endpoint, login → KV read with the token, secret ids stored only as keyed hashes
// (absent from the database bytes, the decrypted storage and the audit rows), use counts,
// expiry and CIDR bindings enforced, failed logins audited without the credential.

type Reply = Awaited<ReturnType<typeof call>>;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([["sqlite"], ["postgresql"]] as const)("AppRole over %s", (storage) => {
  let ts: TestServer;
  /** Every secret id issued: none may be stored or audited. */
  const secrets = new Set<string>();
  const req = (method: string, path: string, token?: string, body?: unknown): Promise<Reply> =>
    call(ts.url, method, path, { ...(token === undefined ? {} : { token }), ...(body === undefined ? {} : { body }) });
  const root = (method: string, path: string, body?: unknown) => req(method, path, ts.rootToken, body);

  async function newSecretId(
    role: string,
    body: Record<string, unknown> = {},
  ): Promise<{ secretId: string; accessor: string; reply: Reply }> {
    const reply = await root("POST", `/v1/auth/approle/role/${role}/secret-id`, body);
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    secrets.add(reply.body.data.secret_id);
    return { secretId: reply.body.data.secret_id, accessor: reply.body.data.secret_id_accessor, reply };
  }
  async function roleId(role: string): Promise<string> {
    const reply = await root("GET", `/v1/auth/approle/role/${role}/role-id`);
    expect(reply.status).toBe(200);
    return reply.body.data.role_id as string;
  }
  const login = (role_id: string, secret_id?: string) =>
    req("POST", "/v1/auth/approle/login", undefined, secret_id === undefined ? { role_id } : { role_id, secret_id });

  beforeAll(async () => {
    ts = await startTestServer({ storage, label: "approle" });
    expect((await root("POST", "/v1/sys/auth/approle", { type: "approle" })).status).toBe(204);
    expect(
      (await root("PUT", "/v1/sys/policies/acl/kv-reader", { policy: `path "secret/data/app/*" { capabilities = ["read"] }` })).status,
    ).toBe(204);
    expect((await root("POST", "/v1/secret/data/app/db", { data: { password: "db-secret-value" } })).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await ts?.close();
  });

  it("creates, reads, lists and deletes roles with Vault's shapes", async () => {
    const created = await root("POST", "/v1/auth/approle/role/app1", {
      token_policies: ["kv-reader"],
      token_ttl: "20m",
      token_max_ttl: 1800,
      secret_id_ttl: "10m",
      secret_id_num_uses: 40,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(204);
    const read = await root("GET", "/v1/auth/approle/role/app1");
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual({
      bind_secret_id: true,
      local_secret_ids: false,
      secret_id_bound_cidrs: [],
      secret_id_num_uses: 40,
      secret_id_ttl: 600,
      token_bound_cidrs: [],
      token_explicit_max_ttl: 0,
      token_max_ttl: 1800,
      token_no_default_policy: false,
      token_num_uses: 0,
      token_period: 0,
      token_policies: ["kv-reader"],
      token_ttl: 1200,
      token_type: "default",
    });
    expect((await root("POST", "/v1/auth/approle/role/app2", { policies: "kv-reader,other" })).status).toBe(204);
    const legacy = await root("GET", "/v1/auth/approle/role/app2");
    expect(legacy.body.data.policies).toEqual(["kv-reader", "other"]);
    expect(legacy.body.data.token_policies).toEqual(["kv-reader", "other"]);
    const list = await root("LIST", "/v1/auth/approle/role");
    expect(list.status).toBe(200);
    expect(list.body.data.keys).toEqual(["app1", "app2"]);
    expect((await root("DELETE", "/v1/auth/approle/role/app2")).status).toBe(204);
    expect((await root("GET", "/v1/auth/approle/role/app2")).status).toBe(404);
    // a list request on a role is no AppRole path (Vault: unsupported path)
    expect((await root("GET", "/v1/auth/approle/role/app2?list=true")).status).toBe(404);
  });

  it("refuses invalid roles before storing anything", async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["nobind", { bind_secret_id: false }, "at least one constraint should be enabled on the role"],
      ["ttls", { token_ttl: 100, token_max_ttl: 10 }, "'token_ttl' cannot be greater than 'token_max_ttl'"],
      ["rooted", { token_policies: ["root"] }, 'cannot contain "root"'],
      ["bound", { token_bound_cidrs: ["10.0.0.0/8"] }, "token_bound_cidrs is not supported"],
      ["uses", { token_num_uses: 3 }, "token_num_uses is not supported"],
      ["badcidr", { secret_id_bound_cidrs: ["10.0.0.0/33"] }, "not a valid CIDR block"],
      ["negative", { secret_id_num_uses: -1 }, "cannot be negative"],
    ];
    for (const [name, body, message] of cases) {
      const reply = await root("POST", `/v1/auth/approle/role/${name}`, body);
      expect(reply.status, name).toBe(400);
      expect(reply.body.errors[0], name).toContain(message);
      expect((await root("GET", `/v1/auth/approle/role/${name}`)).status, name).toBe(404);
    }
    // a name that cannot be a role name is no AppRole path at all
    expect((await root("POST", `/v1/auth/approle/role/${"x".repeat(129)}`, {})).status).toBe(404);
    expect((await root("POST", "/v1/auth/approle/role/-dash", {})).status).toBe(404);
  });

  it("reads and sets the role id", async () => {
    const id = await roleId("app1");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await root("POST", "/v1/auth/approle/role/app1/role-id", { role_id: "custom-role-id" })).status).toBe(204);
    expect(await roleId("app1")).toBe("custom-role-id");
    expect((await root("POST", "/v1/auth/approle/role/other", { role_id: "custom-role-id" })).body.errors).toEqual([
      "role_id already in use",
    ]);
    expect((await root("POST", "/v1/auth/approle/role/app1/role-id", {})).body.errors).toEqual(["missing role_id"]);
    expect((await root("POST", "/v1/auth/approle/role/ghost/role-id", { role_id: "x" })).body.errors).toEqual([
      'role "ghost" does not exist',
    ]);
  });

  it("a secret id TTL of 0 (the role's default, or asked for) never means forever: it is the server's max_lease_ttl", async () => {
    expect((await root("POST", "/v1/auth/approle/role/no-ttl", { token_policies: "kv-reader", secret_id_ttl: 0 })).status).toBe(204);
    const MAX_SECONDS = 768 * 3600;
    for (const body of [{}, { ttl: 0 }, { ttl: "0s" }]) {
      const { secretId, reply } = await newSecretId("no-ttl", body);
      expect(reply.body.data.secret_id_ttl, JSON.stringify(body)).toBe(MAX_SECONDS);
      const lookup = await root("POST", "/v1/auth/approle/role/no-ttl/secret-id/lookup", { secret_id: secretId });
      expect(Date.parse(lookup.body.data.expiration_time) - Date.parse(lookup.body.data.creation_time)).toBe(MAX_SECONDS * 1000);
    }
  });

  it("generates, lists, looks up and destroys secret ids with Vault's shapes", async () => {
    const { secretId, accessor, reply } = await newSecretId("app1", { metadata: '{"tag1":"production"}', ttl: 300, num_uses: 5 });
    expect(reply.body.data).toEqual({ secret_id: secretId, secret_id_accessor: accessor, secret_id_num_uses: 5, secret_id_ttl: 300 });
    expect(secretId).toMatch(/^[0-9a-f-]{36}$/);
    const list = await root("LIST", "/v1/auth/approle/role/app1/secret-id");
    expect(list.status).toBe(200);
    expect(list.body.data.keys).toContain(accessor);
    const lookup = await root("POST", "/v1/auth/approle/role/app1/secret-id/lookup", { secret_id: secretId });
    expect(lookup.status).toBe(200);
    expect(lookup.body.data).toMatchObject({
      cidr_list: [],
      metadata: { tag1: "production" },
      secret_id_accessor: accessor,
      secret_id_num_uses: 5,
      secret_id_ttl: 300,
      token_bound_cidrs: [],
    });
    expect(Date.parse(lookup.body.data.expiration_time) - Date.parse(lookup.body.data.creation_time)).toBe(300_000);
    const byAccessor = await root("POST", "/v1/auth/approle/role/app1/secret-id-accessor/lookup", { secret_id_accessor: accessor });
    expect(byAccessor.status).toBe(200);
    expect(byAccessor.body.data).toEqual(lookup.body.data);
    // limits of the role: no more uses, no longer TTL
    expect((await root("POST", "/v1/auth/approle/role/app1/secret-id", { num_uses: 41 })).status).toBe(400);
    expect((await root("POST", "/v1/auth/approle/role/app1/secret-id", { ttl: 601 })).status).toBe(400);
    // unknown ones
    expect((await root("POST", "/v1/auth/approle/role/app1/secret-id/lookup", { secret_id: "nope" })).status).toBe(204);
    const missing = await root("POST", "/v1/auth/approle/role/app1/secret-id-accessor/lookup", {
      secret_id_accessor: "00000000-0000-0000-0000-000000000000",
    });
    expect(missing.status).toBe(404);
    expect(missing.body.data.error).toContain("failed to find accessor entry for secret_id_accessor");
    expect((await root("POST", "/v1/auth/approle/role/ghost/secret-id", {})).body.errors).toEqual(['role "ghost" does not exist']);
    // destroy by value, then by accessor
    expect((await root("POST", "/v1/auth/approle/role/app1/secret-id/destroy", { secret_id: secretId })).status).toBe(204);
    expect((await root("POST", "/v1/auth/approle/role/app1/secret-id/lookup", { secret_id: secretId })).status).toBe(204);
    const second = await newSecretId("app1");
    expect(
      (await root("POST", "/v1/auth/approle/role/app1/secret-id-accessor/destroy", { secret_id_accessor: second.accessor })).status,
    ).toBe(204);
    expect((await root("POST", "/v1/auth/approle/role/app1/secret-id/lookup", { secret_id: second.secretId })).status).toBe(204);
    expect(
      (await root("POST", "/v1/auth/approle/role/app1/secret-id-accessor/destroy", { secret_id_accessor: second.accessor })).status,
    ).toBe(404);
  });

  it("logs in and the token reads the KV secret, with exactly the role's policies", async () => {
    const { secretId } = await newSecretId("app1");
    const reply = await login(await roleId("app1"), secretId);
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    const auth = reply.body.auth;
    expect(auth.client_token).toMatch(/^egs\./);
    expect(auth.policies).toEqual(["default", "kv-reader"]);
    expect(auth.token_policies).toEqual(["default", "kv-reader"]);
    expect(auth.metadata).toEqual({ role_name: "app1" });
    expect(auth).toMatchObject({ renewable: true, orphan: true, token_type: "service", entity_id: "" });
    expect(auth.lease_duration).toBeGreaterThan(1190);
    expect(auth.lease_duration).toBeLessThanOrEqual(1200);
    const secret = await req("GET", "/v1/secret/data/app/db", auth.client_token);
    expect(secret.status).toBe(200);
    expect(secret.body.data.data).toEqual({ password: "db-secret-value" });
    // nothing else
    expect((await req("POST", "/v1/secret/data/app/db", auth.client_token, { data: { x: "y" } })).status).toBe(403);
    expect((await req("GET", "/v1/sys/auth", auth.client_token)).status).toBe(403);
    const self = await req("GET", "/v1/auth/token/lookup-self", auth.client_token);
    expect(self.body.data.policies).toEqual(["default", "kv-reader"]);
    expect(self.body.data.display_name).toBe("approle");

    expect(
      (await root("POST", "/v1/auth/approle/role/nodefault", { token_policies: "kv-reader", token_no_default_policy: true })).status,
    ).toBe(204);
    const other = await newSecretId("nodefault");
    const noDefault = await login(await roleId("nodefault"), other.secretId);
    expect(noDefault.body.auth.policies).toEqual(["kv-reader"]);
  });

  it("refuses wrong, used-up, expired and destroyed secret ids with Vault's message", async () => {
    const id = await roleId("app1");
    const invalid = ["invalid role or secret ID"];
    expect((await login(id, "not-a-secret-id")).body.errors).toEqual(invalid);
    expect((await login("no-such-role-id", "x")).body.errors).toEqual(invalid);
    expect((await login(id)).body.errors).toEqual(["missing secret_id"]);
    expect((await req("POST", "/v1/auth/approle/login", undefined, {})).body.errors).toEqual(["missing role_id"]);

    const twice = await newSecretId("app1", { num_uses: 2 });
    expect((await login(id, twice.secretId)).status).toBe(200);
    const lookup = await root("POST", "/v1/auth/approle/role/app1/secret-id/lookup", { secret_id: twice.secretId });
    expect(lookup.body.data.secret_id_num_uses).toBe(1);
    expect((await login(id, twice.secretId)).status).toBe(200);
    const third = await login(id, twice.secretId);
    expect(third.status).toBe(400);
    expect(third.body.errors).toEqual(invalid);

    const short = await newSecretId("app1", { ttl: 1 });
    await sleep(1200);
    expect((await login(id, short.secretId)).body.errors).toEqual(invalid);
  });

  it("spends a last use exactly once under concurrent logins", async () => {
    const id = await roleId("app1");
    const once = await newSecretId("app1", { num_uses: 1 });
    const replies = await Promise.all(Array.from({ length: 6 }, () => login(id, once.secretId)));
    expect(replies.map((r) => r.status).sort()).toEqual([200, 400, 400, 400, 400, 400]);
    // and it is gone
    expect((await root("POST", "/v1/auth/approle/role/app1/secret-id/lookup", { secret_id: once.secretId })).status).toBe(204);
  });

  it("refuses a client outside the role's or the secret id's CIDR blocks", async () => {
    expect(
      (await root("POST", "/v1/auth/approle/role/office", { token_policies: "kv-reader", secret_id_bound_cidrs: ["10.0.0.0/8"] })).status,
    ).toBe(204);
    // a secret id's blocks must lie inside the role's
    expect((await root("POST", "/v1/auth/approle/role/office/secret-id", { cidr_list: "127.0.0.1/32" })).status).toBe(400);
    const office = await newSecretId("office", { cidr_list: "10.1.0.0/16" });
    const refused = await login(await roleId("office"), office.secretId);
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0]).toContain("unauthorized by CIDR restrictions on the secret ID");
    const anywhere = await newSecretId("office");
    const byRole = await login(await roleId("office"), anywhere.secretId);
    expect(byRole.status).toBe(400);
    expect(byRole.body.errors[0]).toBe('source address "127.0.0.1" unauthorized by CIDR restrictions on the role');
    // the refusals spent nothing
    expect((await root("POST", "/v1/auth/approle/role/office/secret-id/lookup", { secret_id: anywhere.secretId })).status).toBe(200);

    expect((await root("POST", "/v1/auth/approle/role/local", { token_policies: "kv-reader" })).status).toBe(204);
    const local = await newSecretId("local", { cidr_list: ["127.0.0.1/32"] });
    expect((await login(await roleId("local"), local.secretId)).status).toBe(200);
    const remote = await newSecretId("local", { cidr_list: ["10.0.0.0/8"] });
    expect((await login(await roleId("local"), remote.secretId)).status).toBe(400);
  });

  it("logs in without a secret id when the role does not bind one (CIDR-bound)", async () => {
    expect(
      (await root("POST", "/v1/auth/approle/role/cidr-only", { bind_secret_id: false, secret_id_bound_cidrs: "127.0.0.0/8" })).status,
    ).toBe(204);
    expect((await login(await roleId("cidr-only"))).status).toBe(200);
    expect((await root("POST", "/v1/auth/approle/role/cidr-only/secret-id", {})).body.errors).toEqual([
      "bind_secret_id is not set on the role",
    ]);
  });

  it("deleting a role deletes its secret ids", async () => {
    expect((await root("POST", "/v1/auth/approle/role/temp", { token_policies: "kv-reader" })).status).toBe(204);
    const id = await roleId("temp");
    const temp = await newSecretId("temp");
    expect((await root("DELETE", "/v1/auth/approle/role/temp")).status).toBe(204);
    expect((await root("POST", "/v1/auth/approle/role/temp", { token_policies: "kv-reader", role_id: id })).status).toBe(204);
    expect((await login(id, temp.secretId)).status).toBe(400);
    expect((await root("LIST", "/v1/auth/approle/role/temp/secret-id")).status).toBe(404);
  });

  it("authorises management paths with the ACL (auth/<mount>/...) and keeps login public", async () => {
    expect(
      (await root("PUT", "/v1/sys/policies/acl/approle-reader", { policy: `path "auth/approle/role/*" { capabilities = ["read"] }` }))
        .status,
    ).toBe(204);
    const token = (await root("POST", "/v1/auth/token/create", { policies: ["approle-reader"] })).body.auth.client_token as string;
    expect((await req("GET", "/v1/auth/approle/role/app1", token)).status).toBe(200);
    expect((await req("POST", "/v1/auth/approle/role/app1/secret-id", token, {})).status).toBe(403);
    expect((await req("POST", "/v1/auth/approle/role/new-one", token, {})).status).toBe(403);
    expect((await req("GET", "/v1/auth/approle/role/app1")).status).toBe(403);
    // create vs update: a policy with create only may create a role but not change one
    expect(
      (await root("PUT", "/v1/sys/policies/acl/approle-creator", { policy: `path "auth/approle/role/*" { capabilities = ["create"] }` }))
        .status,
    ).toBe(204);
    const creator = (await root("POST", "/v1/auth/token/create", { policies: ["approle-creator"] })).body.auth.client_token as string;
    expect((await req("POST", "/v1/auth/approle/role/created-by-acl", creator, { token_policies: "kv-reader" })).status).toBe(204);
    expect((await req("POST", "/v1/auth/approle/role/created-by-acl", creator, { token_policies: "other" })).status).toBe(403);
  });

  it("bounds what an unauthenticated login can send", async () => {
    const id = await roleId("app1");
    const long = await login(id, "s".repeat(1025));
    expect(long.status).toBe(400);
    expect(long.body.errors).toEqual(["secret_id is longer than 1024 bytes"]);
    const big = await req("POST", "/v1/auth/approle/login", undefined, { role_id: id, padding: "p".repeat(20_000) });
    expect(big.status).toBe(413);
  });

  it("audits failed logins without the secret id, and stores secret ids only as keyed hashes", async () => {
    const leaked = "5e1c3e7a-0000-4000-8000-leakedsecret";
    secrets.add(leaked);
    const failed = await login(await roleId("app1"), leaked);
    expect(failed.status).toBe(400);
    const audit = await root("GET", "/v1/sys/audit-log?path_prefix=auth/approle/login&limit=1000");
    expect(audit.status, JSON.stringify(audit.body)).toBe(200);
    const rows = audit.body.data.entries as unknown;
    const text = JSON.stringify(rows);
    expect(text).toContain("invalid role or secret ID");
    expect(text).toContain('"success":false');
    const all = JSON.stringify((await root("GET", "/v1/sys/audit-log?limit=1000")).body);
    // the decrypted storage, every value
    const plain = await decryptedStorageText(ts);
    // the database as stored
    const raw = await databaseBytes(ts, storage);
    expect(secrets.size).toBeGreaterThan(10);
    for (const secret of secrets) {
      expect(all.includes(secret), "audit log").toBe(false);
      expect(plain.includes(secret), "decrypted storage").toBe(false);
      expect(raw.includes(Buffer.from(secret)), "database bytes").toBe(false);
    }
    // the scan did see the AppRole data (the check above is not vacuous)
    expect(plain).toContain("custom-role-id");
    // role ids are looked up by keyed hash too: the database keys do not hold them
    expect(raw.includes(Buffer.from("custom-role-id"))).toBe(false);
  });
});
