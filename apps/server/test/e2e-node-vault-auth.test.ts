/**
 * The unmodified `node-vault` client against a real server (SQLite and PostgreSQL): machines log
 * in with AppRole and people with userpass, then read a secret with the token they got; token
 * roles; a token renewed up to its explicit_max_ttl and no further (real time, short TTLs).
 */
import vault from "node-vault";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "@egide/test-server";

const READER_POLICY = `path "secret/data/app/*" { capabilities = ["read"] }`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([["sqlite"], ["postgresql"]] as const)("node-vault logs in and uses tokens over %s", (storage) => {
  let server: TestServer;
  let admin: ReturnType<typeof vault>;
  const client = () => vault({ apiVersion: "v1", endpoint: server.url });

  beforeAll(async () => {
    server = await startTestServer({ storage, label: `node-vault-auth-${storage}` });
    admin = vault({ apiVersion: "v1", endpoint: server.url, token: server.rootToken });
    await admin.addPolicy({ name: "app-reader", rules: READER_POLICY });
    await admin.write("secret/data/app/db", { data: { password: "s3cr3t-value" } });
    await admin.write("secret/data/other/x", { data: { v: 1 } });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  it("AppRole: enable, role, role-id, secret-id, login, then read a secret with the token and nothing more", async () => {
    await admin.enableAuth({ mount_point: "approle", type: "approle" });
    // node-vault sends only the fields of its own schema: the older `policies` (a comma-separated string).
    await admin.addApproleRole({ role_name: "app", policies: "app-reader", secret_id_num_uses: 1, token_ttl: 600 });
    const roleId = (await admin.getApproleRoleId({ role_name: "app" })).data.role_id as string;
    const secretId = (await admin.getApproleRoleSecret({ role_name: "app" })).data.secret_id as string;
    expect(roleId).toEqual(expect.any(String));
    expect(secretId).toEqual(expect.any(String));

    const machine = client();
    const login = await machine.approleLogin({ role_id: roleId, secret_id: secretId });
    expect(login.auth.policies).toEqual(["app-reader", "default"]);
    expect(login.auth.lease_duration).toBe(600);
    expect(machine.token).toBe(login.auth.client_token);
    expect((await machine.read("secret/data/app/db")).data.data).toEqual({ password: "s3cr3t-value" });
    await expect(machine.read("secret/data/other/x")).rejects.toMatchObject({ response: { statusCode: 403 } });
    // Every login's lease_duration is the TTL granted, whatever the clock did in between.
    await admin.addApproleRole({ role_name: "app2", policies: "app-reader", token_ttl: 600 });
    const roleId2 = (await admin.getApproleRoleId({ role_name: "app2" })).data.role_id as string;
    for (let i = 0; i < 10; i++) {
      const secret = (await admin.getApproleRoleSecret({ role_name: "app2" })).data.secret_id as string;
      expect((await client().approleLogin({ role_id: roleId2, secret_id: secret })).auth.lease_duration).toBe(600);
    }
    // The secret id had one use.
    await expect(client().approleLogin({ role_id: roleId, secret_id: secretId })).rejects.toMatchObject({ response: { statusCode: 400 } });
  });

  it("userpass: a user logs in with a password and reads a secret; a wrong password is refused", async () => {
    await admin.enableAuth({ mount_point: "userpass", type: "userpass" });
    await admin.write("auth/userpass/users/alice", { password: "correct horse battery", token_policies: "app-reader" });
    const person = client();
    const login = await person.userpassLogin({ username: "alice", password: "correct horse battery" });
    expect(login.auth.policies).toEqual(["app-reader", "default"]);
    expect((await person.read("secret/data/app/db")).data.data).toEqual({ password: "s3cr3t-value" });
    await expect(client().userpassLogin({ username: "alice", password: "wrong" })).rejects.toMatchObject({ response: { statusCode: 400 } });
    await expect(client().userpassLogin({ username: "nobody", password: "wrong" })).rejects.toMatchObject({
      response: { statusCode: 400 },
    });
  });

  it("token roles: a role's allowed policies bound what a token created with it may have", async () => {
    await admin.addTokenRole({ role_name: "ci", allowed_policies: "app-reader", renewable: true, explicit_max_ttl: 3600 });
    const roles = await admin.tokenRoles();
    expect(roles.data.keys).toContain("ci");
    const created = await admin.write("auth/token/create/ci", { policies: ["app-reader"] });
    expect(created.auth.policies).toEqual(["app-reader", "default"]);
    const ci = vault({ apiVersion: "v1", endpoint: server.url, token: created.auth.client_token });
    expect((await ci.read("secret/data/app/db")).data.data).toEqual({ password: "s3cr3t-value" });
    await expect(admin.write("auth/token/create/ci", { policies: ["root"] })).rejects.toMatchObject({ response: { statusCode: 400 } });
  });

  it("response wrapping: a wrapped read holds only wrap_info; unwrap gives the secret once; a second unwrap fails", async () => {
    const wrapped = await admin.read("secret/data/app/db", { headers: { "X-Vault-Wrap-TTL": "5m" } });
    expect(wrapped.data).toBeNull();
    expect(wrapped.wrap_info).toMatchObject({ token: expect.any(String), ttl: 300, creation_path: "secret/data/app/db" });
    expect(JSON.stringify(wrapped)).not.toContain("s3cr3t-value");
    const receiver = vault({ apiVersion: "v1", endpoint: server.url, token: wrapped.wrap_info.token });
    const unwrapped = await receiver.unwrap();
    expect(unwrapped.data.data).toEqual({ password: "s3cr3t-value" });
    await expect(receiver.unwrap()).rejects.toMatchObject({ response: { statusCode: 400 } });
    // Unwrapping with another token, naming the wrapping token in the body: once too.
    const again = await admin.read("secret/data/app/db", { headers: { "X-Vault-Wrap-TTL": "60" } });
    expect((await admin.unwrap({ token: again.wrap_info.token })).data.data).toEqual({ password: "s3cr3t-value" });
    await expect(admin.unwrap({ token: again.wrap_info.token })).rejects.toMatchObject({ response: { statusCode: 400 } });
  });

  it("renews up to explicit_max_ttl and no further, then the token is gone", async () => {
    const created = await admin.tokenCreate({ policies: ["app-reader"], ttl: "2s", explicit_max_ttl: "4s" });
    expect(created.auth.lease_duration).toBe(2);
    const short = vault({ apiVersion: "v1", endpoint: server.url, token: created.auth.client_token });
    const renewed = await short.tokenRenewSelf({ increment: "1h" });
    // Capped at what is left of the explicit maximum (4 s from creation).
    expect(renewed.auth.lease_duration).toBeGreaterThan(0);
    expect(renewed.auth.lease_duration).toBeLessThanOrEqual(4);
    await sleep(1500);
    const again = await short.tokenRenewSelf({ increment: "1h" });
    expect(again.auth.lease_duration).toBeLessThanOrEqual(3);
    await sleep(4500 - 1500);
    await expect(short.tokenLookupSelf()).rejects.toMatchObject({ response: { statusCode: 403 } });
  }, 20_000);
});
