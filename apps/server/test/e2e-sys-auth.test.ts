import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startTestServer, type TestServer } from "@egide/test-server";

// Auth methods as mounts, end to end over SQLite and PostgreSQL: sys/auth list, enable,
// read, tune and disable with Vault's shapes and sudo rules; `token/` always there and
// untouchable; disabling a method revokes its tokens and purges its data.

type Reply = Awaited<ReturnType<typeof call>>;

describe.each([["sqlite"], ["postgresql"]] as const)("sys/auth over %s", (storage) => {
  let ts: TestServer;
  const req = (method: string, path: string, token?: string, body?: unknown): Promise<Reply> =>
    call(ts.url, method, path, { ...(token === undefined ? {} : { token }), ...(body === undefined ? {} : { body }) });
  const root = (method: string, path: string, body?: unknown) => req(method, path, ts.rootToken, body);

  async function tokenWith(policy: string, hcl: string): Promise<string> {
    expect((await root("PUT", `/v1/sys/policies/acl/${policy}`, { policy: hcl })).status).toBe(204);
    const created = await root("POST", "/v1/auth/token/create", { policies: [policy] });
    expect(created.status).toBe(200);
    return created.body.auth.client_token as string;
  }

  beforeAll(async () => {
    ts = await startTestServer({ storage, label: "sys-auth" });
  }, 60_000);
  afterAll(async () => {
    await ts?.close();
  });

  it("lists token/ on a fresh server, with Vault's fields", async () => {
    const reply = await root("GET", "/v1/sys/auth");
    expect(reply.status).toBe(200);
    expect(Object.keys(reply.body.data)).toEqual(["token/"]);
    expect(reply.body.data["token/"]).toMatchObject({
      type: "token",
      description: "token based credentials",
      config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false, token_type: "default-service" },
      local: false,
      seal_wrap: false,
      options: null,
    });
    // Vault repeats the methods at the top level.
    expect(reply.body["token/"]).toEqual(reply.body.data["token/"]);
  });

  it("enables approle and userpass (also below a multi-segment path) and describes them", async () => {
    expect((await root("POST", "/v1/sys/auth/approle", { type: "approle", description: "machines" })).status).toBe(204);
    const enabled = await root("POST", "/v1/sys/auth/team/users", {
      type: "userpass",
      config: { default_lease_ttl: "10m", max_lease_ttl: 3600 },
    });
    expect(enabled.status, JSON.stringify(enabled.body)).toBe(204);
    const list = await root("GET", "/v1/sys/auth");
    expect(Object.keys(list.body.data).sort()).toEqual(["approle/", "team/users/", "token/"]);
    expect(list.body.data["approle/"]).toMatchObject({ type: "approle", description: "machines" });
    expect(list.body.data["approle/"].accessor).toMatch(/^auth_approle_[0-9a-f]{8}$/);
    expect(list.body.data["team/users/"]).toMatchObject({ type: "userpass", config: { default_lease_ttl: 600, max_lease_ttl: 3600 } });
    const one = await root("GET", "/v1/sys/auth/team/users");
    expect(one.status).toBe(200);
    expect(one.body.data).toEqual(list.body.data["team/users/"]);
  });

  it("refuses token/, overlapping paths and unknown types", async () => {
    const cases: Array<[string, unknown, string]> = [
      ["token", { type: "approle" }, "already in use"],
      ["token/sub", { type: "userpass" }, "already in use"],
      ["approle/x", { type: "userpass" }, "already in use"],
      ["team", { type: "userpass" }, "already in use"],
      ["gh", { type: "github" }, "unsupported auth method type"],
      ["again", { type: "token" }, "cannot be enabled again"],
      ["nothing", {}, "backend type must be specified"],
      ["huge", { type: "approle", config: { max_lease_ttl: "100000h" } }, "cannot be greater than the server's max_lease_ttl"],
    ];
    for (const [path, body, message] of cases) {
      const reply = await root("POST", `/v1/sys/auth/${path}`, body);
      expect(reply.status, path).toBe(400);
      expect(reply.body.errors[0], path).toContain(message);
    }
    const disableToken = await root("DELETE", "/v1/sys/auth/token");
    expect(disableToken.status).toBe(400);
    expect(disableToken.body.errors).toEqual(["token credential backend cannot be disabled"]);
    expect((await root("DELETE", "/v1/sys/auth/never-enabled")).status).toBe(204);
    expect((await root("GET", "/v1/sys/auth/never-enabled")).status).toBe(400);
  });

  it("tunes the TTL limits within the server's, and reads them back as Vault does", async () => {
    const tokenTune = await root("GET", "/v1/sys/auth/token/tune");
    expect(tokenTune.status).toBe(200);
    const systemMax = tokenTune.body.data.max_lease_ttl as number;
    expect(systemMax).toBeGreaterThan(0);
    const before = await root("GET", "/v1/sys/auth/approle/tune");
    expect(before.body.data).toMatchObject({
      max_lease_ttl: systemMax,
      description: "machines",
      force_no_cache: false,
      token_type: "default-service",
    });
    expect(
      (await root("POST", "/v1/sys/auth/approle/tune", { default_lease_ttl: "2m", max_lease_ttl: "5m", description: "tuned" })).status,
    ).toBe(204);
    const after = await root("GET", "/v1/sys/auth/approle/tune");
    expect(after.body.data).toMatchObject({ default_lease_ttl: 120, max_lease_ttl: 300, description: "tuned" });
    const tooLong = await root("POST", "/v1/sys/auth/approle/tune", { default_lease_ttl: "10m" });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errors[0]).toContain("cannot be greater than max_lease_ttl");
    expect((await root("POST", "/v1/sys/auth/approle/tune", { max_lease_ttl: systemMax + 1 })).status).toBe(400);
    expect((await root("POST", "/v1/sys/auth/token/tune", { max_lease_ttl: 60 })).status).toBe(400);
    expect((await root("POST", "/v1/sys/auth/missing/tune", { max_lease_ttl: 60 })).status).toBe(400);
    // unchanged by the refusals
    expect((await root("GET", "/v1/sys/auth/approle/tune")).body.data).toMatchObject({ default_lease_ttl: 120, max_lease_ttl: 300 });
  });

  it("needs sudo under sys/auth/ but not to list, as in Vault", async () => {
    const plain = await tokenWith(
      "auth-admin",
      `path "sys/auth" { capabilities = ["read"] }\npath "sys/auth/*" { capabilities = ["create", "read", "update", "delete"] }`,
    );
    const sudo = await tokenWith("auth-admin-sudo", `path "sys/auth/*" { capabilities = ["create", "read", "update", "delete", "sudo"] }`);
    expect((await req("GET", "/v1/sys/auth", plain)).status).toBe(200);
    expect((await req("POST", "/v1/sys/auth/by-plain", plain, { type: "approle" })).status).toBe(403);
    expect((await req("GET", "/v1/sys/auth/approle", plain)).status).toBe(403);
    expect((await req("GET", "/v1/sys/auth/approle/tune", plain)).status).toBe(403);
    expect((await req("POST", "/v1/sys/auth/by-sudo", sudo, { type: "approle" })).status).toBe(204);
    expect((await req("GET", "/v1/sys/auth/by-sudo/tune", sudo)).status).toBe(200);
    expect((await req("DELETE", "/v1/sys/auth/by-sudo", plain)).status).toBe(403);
    expect((await req("DELETE", "/v1/sys/auth/by-sudo", sudo)).status).toBe(204);
    expect(Object.keys((await root("GET", "/v1/sys/auth")).body.data)).not.toContain("by-sudo/");
    // No token at all: 403 everywhere, listing included.
    expect((await req("GET", "/v1/sys/auth")).status).toBe(403);
  });

  it("serves a method's paths only while it is enabled; disabling revokes its tokens and purges its data", async () => {
    expect((await root("POST", "/v1/sys/auth/purge-me", { type: "userpass" })).status).toBe(204);
    const mount = (await root("GET", "/v1/sys/auth/purge-me")).body.data as { uuid: string };
    expect((await root("POST", "/v1/auth/purge-me/users/alice", { password: "correct horse", token_policies: "p1" })).status).toBe(204);
    const login = await req("POST", "/v1/auth/purge-me/login/alice", undefined, { password: "correct horse" });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    const token = login.body.auth.client_token as string;
    expect((await req("GET", "/v1/auth/token/lookup-self", token)).status).toBe(200);
    const storage = ts.server.context.storage;
    expect((await storage.list(`auth/${mount.uuid}/`)).length).toBeGreaterThan(0);

    expect((await root("DELETE", "/v1/sys/auth/purge-me")).status).toBe(204);
    expect(await storage.list(`auth/${mount.uuid}/`)).toEqual([]);
    expect((await req("GET", "/v1/auth/token/lookup-self", token)).status).toBe(403);
    const gone = await root("GET", "/v1/auth/purge-me/users/alice");
    expect(gone.status).toBe(404);
    expect(gone.body.errors[0]).toContain("no handler for route");
    expect((await req("POST", "/v1/auth/purge-me/login/alice", undefined, { password: "correct horse" })).status).toBe(403);

    // Enabled again at the same path: a new, empty method.
    expect((await root("POST", "/v1/sys/auth/purge-me", { type: "userpass" })).status).toBe(204);
    expect((await root("GET", "/v1/auth/purge-me/users/alice")).status).toBe(404);
    const relogin = await req("POST", "/v1/auth/purge-me/login/alice", undefined, { password: "correct horse" });
    expect(relogin.status).toBe(400);
    expect(relogin.body.errors).toEqual(["invalid username or password"]);
  });

  it("caps login tokens at the mount's max_lease_ttl", async () => {
    expect((await root("POST", "/v1/sys/auth/short", { type: "userpass", config: { max_lease_ttl: "90s" } })).status).toBe(204);
    expect((await root("POST", "/v1/auth/short/users/bob", { password: "pw-bob-123", token_ttl: "1h" })).status).toBe(204);
    const login = await req("POST", "/v1/auth/short/login/bob", undefined, { password: "pw-bob-123" });
    expect(login.status).toBe(200);
    expect(login.body.auth.lease_duration).toBeGreaterThan(80);
    expect(login.body.auth.lease_duration).toBeLessThanOrEqual(90);
  });

  it("answers Vault's 404 for paths under no method and keeps auth/token/ routes", async () => {
    const none = await root("GET", "/v1/auth/nothing/here");
    expect(none.status).toBe(404);
    expect(none.body.errors[0]).toContain('no handler for route "auth/nothing/here"');
    expect((await req("POST", "/v1/auth/nothing/login", undefined, {})).status).toBe(403);
    expect((await root("GET", "/v1/auth/token/lookup-self")).status).toBe(200);
    expect((await root("GET", "/v1/auth/approle/not-a-path")).status).toBe(404);
  });
});
