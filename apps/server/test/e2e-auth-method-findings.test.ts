import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startTestServer, type TestServer } from "@egide/test-server";

// Findings of a review of the auth methods, each with the whole class it belongs to:
// - no spelling of a token-issuing setting may hand out a non-assignable policy
//   (`response-wrapping`, `control-group`): AppRole roles, userpass users and their policies
//   endpoint, token roles;
// - a write authorised as a create never replaces an entry made meanwhile (AppRole roles,
//   userpass users);
// - a login name is checked before it is lower-cased (Unicode folding onto ASCII).

type Reply = Awaited<ReturnType<typeof call>>;

for (const storage of ["sqlite", "postgresql"] as const) {
  describe(`auth method review findings over ${storage}`, () => {
    let ts: TestServer;
    const root = (method: string, path: string, body?: unknown): Promise<Reply> =>
      call(ts.url, method, path, { token: ts.rootToken, ...(body === undefined ? {} : { body }) });

    beforeAll(async () => {
      ts = await startTestServer({ storage, label: `auth-findings-${storage}` });
      expect((await root("POST", "/v1/sys/auth/approle", { type: "approle" })).status).toBe(204);
      expect((await root("POST", "/v1/sys/auth/userpass", { type: "userpass" })).status).toBe(204);
    }, 60_000);
    afterAll(async () => {
      await ts?.close();
    });

    it("refuses a non-assignable policy in every setting that issues tokens", async () => {
      for (const policy of ["response-wrapping", "control-group", "Response-Wrapping"]) {
        const attempts: Array<[string, string, unknown]> = [
          ["POST", "/v1/auth/approle/role/r1", { token_policies: [policy], token_no_default_policy: true }],
          ["POST", "/v1/auth/approle/role/r1", { policies: policy }],
          ["POST", "/v1/auth/userpass/users/u1", { password: "pw-123456", token_policies: policy }],
          ["POST", "/v1/auth/userpass/users/u1", { password: "pw-123456", policies: [policy] }],
          ["POST", "/v1/auth/token/roles/t1", { allowed_policies: [policy] }],
          ["POST", "/v1/auth/token/create", { policies: [policy], no_default_policy: true }],
        ];
        for (const [method, path, body] of attempts) {
          const reply = await root(method, path, body);
          expect({ status: reply.status, errors: reply.body?.errors }, `${path} ${JSON.stringify(body)}`).toEqual({
            status: 400,
            errors: [`cannot assign policy "${policy.toLowerCase()}"`],
          });
        }
      }
      expect((await root("POST", "/v1/auth/userpass/users/u2", { password: "pw-123456" })).status).toBe(204);
      const policies = await root("POST", "/v1/auth/userpass/users/u2/policies", { token_policies: "response-wrapping" });
      expect(policies.status).toBe(400);
      expect((await root("GET", "/v1/auth/userpass/users/u2")).body.data.token_policies).toEqual([]);
    });

    it("a create-only caller racing for the same new role or user creates it once; the others get 409 or 403, none replaces it", async () => {
      const policy = `path "auth/approle/role/*" { capabilities = ["create"] }
path "auth/userpass/users/*" { capabilities = ["create"] }`;
      expect((await root("PUT", "/v1/sys/policies/acl/creator", { policy })).status).toBe(204);
      const token = (await root("POST", "/v1/auth/token/create", { policies: ["creator"] })).body.auth.client_token as string;
      for (const [path, body] of [
        ["/v1/auth/approle/role/raced", (i: number) => ({ token_policies: [`p${i}`] })],
        ["/v1/auth/userpass/users/raced", (i: number) => ({ password: `password-${i}`, token_policies: [`p${i}`] })],
      ] as const) {
        const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => call(ts.url, "POST", path, { token, body: body(i) })));
        const statuses = replies.map((reply) => reply.status);
        expect(
          statuses.filter((status) => status === 204),
          `${path}: ${JSON.stringify(statuses)}`,
        ).toHaveLength(1);
        expect(
          statuses.every((status) => status === 204 || status === 409 || status === 403),
          JSON.stringify(statuses),
        ).toBe(true);
        // The one that won is what is stored.
        const winner = statuses.indexOf(204);
        expect((await root("GET", path)).body.data.token_policies).toEqual([`p${winner}`]);
      }
    });

    it("a login name that only folds onto an existing user under Unicode case rules does not log in as that user", async () => {
      expect((await root("POST", "/v1/auth/userpass/users/kate", { password: "kate-password-1" })).status).toBe(204);
      expect((await call(ts.url, "POST", "/v1/auth/userpass/login/KATE", { body: { password: "kate-password-1" } })).status).toBe(200);
      for (const spelling of ["%E2%84%AAate", "%E2%84%AAATE", "kat%C3%A9", "%EF%BC%ABate"]) {
        const reply = await call(ts.url, "POST", `/v1/auth/userpass/login/${spelling}`, { body: { password: "kate-password-1" } });
        expect(reply.status, spelling).not.toBe(200);
        expect(reply.body?.auth ?? null, spelling).toBeNull();
      }
    });
  });
}

describe("an auth method disabled on another instance", () => {
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    a = await startTestServer({ storage: "postgresql", label: "auth-disabled-a" });
    b = await startTestServer({ storage: "postgresql", postgres: a.postgres as { database: string; schema: string } });
    for (const key of a.keys) expect((await call(b.url, "PUT", "/v1/sys/unseal", { body: { key: key.toString("hex") } })).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it("is answered 404 by an instance whose table still names it (403 once it knows), never 500, and logs nobody in", async () => {
    const root = (server: TestServer, method: string, path: string, body?: unknown) =>
      call(server.url, method, path, { token: a.rootToken, ...(body === undefined ? {} : { body }) });
    expect((await root(a, "POST", "/v1/sys/auth/approle", { type: "approle" })).status).toBe(204);
    expect((await root(a, "POST", "/v1/auth/approle/role/svc", { token_policies: "default" })).status).toBe(204);
    const roleId = (await root(a, "GET", "/v1/auth/approle/role/svc/role-id")).body.data.role_id as string;
    const secretId = (await root(a, "POST", "/v1/auth/approle/role/svc/secret-id", {})).body.data.secret_id as string;
    for (let round = 0; round < 3; round++) {
      // B reads the table now (a login there works), then A disables the method.
      if (round > 0) {
        expect((await root(a, "POST", "/v1/sys/auth/approle", { type: "approle" })).status).toBe(204);
        expect((await root(a, "POST", "/v1/auth/approle/role/svc", { token_policies: "default", role_id: roleId })).status).toBe(204);
      }
      const fresh =
        round === 0 ? secretId : ((await root(a, "POST", "/v1/auth/approle/role/svc/secret-id", {})).body.data.secret_id as string);
      const before = await call(b.url, "POST", "/v1/auth/approle/login", { body: { role_id: roleId, secret_id: fresh } });
      expect(before.status, JSON.stringify(before.body)).toBe(200);
      expect((await root(a, "DELETE", "/v1/sys/auth/approle")).status).toBe(204);
      const after = await call(b.url, "POST", "/v1/auth/approle/login", { body: { role_id: roleId, secret_id: fresh } });
      // B's table follows the change feed: within its lag it still names the method and the
      // login handler answers 404; once the change arrived the path is no login (403 without a
      // token). Never 500, never a token.
      expect([403, 404], JSON.stringify(after.body)).toContain(after.status);
      expect(after.body.auth ?? null).toBeNull();
    }
  });
});
