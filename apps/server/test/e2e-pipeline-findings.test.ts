import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, rawHttp, startTestServer, type TestServer } from "@egide/test-server";

// Findings of a review of the request pipeline, each with its class:
// - a body key `__proto__` is a parameter like any other: allowed_parameters and
//   denied_parameters see it, on every engine and route that takes a body;
// - a use-limited token spends a use only on a request that was authorised (Vault's order:
//   CheckToken, then UseToken), on every kind of refusal;
// - an unmodified client (node-vault) sends a body-less unwrap with a form Content-Type: a
//   token route takes an empty body whatever its Content-Type, while a form body, or any
//   non-JSON request to an unauthenticated sys/ route, is still refused.

type Reply = Awaited<ReturnType<typeof call>>;

for (const storage of ["sqlite", "postgresql"] as const) {
  describe(`request pipeline findings over ${storage}`, () => {
    let ts: TestServer;
    const as = (token: string, method: string, path: string, body?: unknown): Promise<Reply> =>
      call(ts.url, method, path, { token, ...(body === undefined ? {} : { body }) });
    const root = (method: string, path: string, body?: unknown) => as(ts.rootToken, method, path, body);

    beforeAll(async () => {
      ts = await startTestServer({ storage, label: `pipeline-findings-${storage}` });
      expect((await root("POST", "/v1/sys/mounts/kv1", { type: "kv" })).status).toBe(204);
      const policy = `path "kv1/allowed/*" {
  capabilities = ["create", "update"]
  allowed_parameters = { "foo" = [] }
}
path "kv1/denied/*" {
  capabilities = ["create", "update"]
  denied_parameters = { "*" = [] }
}
path "secret/data/allowed/*" {
  capabilities = ["create", "update"]
  allowed_parameters = { "data" = [] }
}
path "sys/policies/acl/*" {
  capabilities = ["create", "update"]
  allowed_parameters = { "policy" = [] }
}
path "secret/data/readable/*" { capabilities = ["read"] }`;
      expect((await root("PUT", "/v1/sys/policies/acl/constrained", { policy })).status).toBe(204);
      expect((await root("POST", "/v1/secret/data/readable/x", { data: { v: 1 } })).status).toBe(200);
    }, 60_000);
    afterAll(async () => {
      await ts?.close();
    });

    it("checks a __proto__ body key against allowed_parameters and denied_parameters, on every route that takes a body", async () => {
      const token = (await root("POST", "/v1/auth/token/create", { policies: ["constrained"] })).body.auth.client_token as string;
      // Sent as raw JSON: the key must reach the server as an own "__proto__" property.
      const raw = (object: string) => JSON.parse(object) as unknown;
      const cases: Array<[string, string, string]> = [
        ["POST", "/v1/kv1/allowed/a", '{"foo":"a","__proto__":{"bar":"smuggled"}}'],
        ["POST", "/v1/kv1/denied/a", '{"__proto__":{"a":"b"}}'],
        ["POST", "/v1/secret/data/allowed/a", '{"data":{"v":1},"__proto__":{"options":{"cas":0}}}'],
        ["PUT", "/v1/sys/policies/acl/p1", '{"policy":"path \\"x\\" { capabilities = [\\"read\\"] }","__proto__":{"x":1}}'],
      ];
      for (const [method, path, body] of cases) {
        expect((await as(token, method, path, raw(body))).status, `${path} ${body}`).toBe(403);
      }
      // The same requests without the key are allowed (the check refused the key, not the request).
      expect((await as(token, "POST", "/v1/kv1/allowed/a", { foo: "a" })).status).toBe(204);
      expect((await as(token, "POST", "/v1/secret/data/allowed/a", { data: { v: 1 } })).status).toBe(200);
      expect((await root("GET", "/v1/kv1/allowed/a")).body.data).toEqual({ foo: "a" });
    });

    it("takes an empty body with any Content-Type on token routes, and still refuses form bodies and body-less public writes", async () => {
      const send = (method: string, path: string, headers: string, body = "") =>
        rawHttp(
          ts.url,
          `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      const form = "Content-Type: application/x-www-form-urlencoded\r\n";
      const token = `X-Vault-Token: ${ts.rootToken}\r\n`;
      // Reaches the handler (which then wants paths): the empty body was taken.
      const empty = await send("POST", "/v1/sys/capabilities-self", token + form);
      expect({ status: empty.status, body: JSON.parse(empty.body) }).toEqual({ status: 400, body: { errors: ["paths must be supplied"] } });
      for (const type of ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]) {
        expect((await send("POST", "/v1/sys/capabilities-self", `${token}Content-Type: ${type}\r\n`, "paths=secret")).status, type).toBe(
          415,
        );
        expect((await send("PUT", "/v1/sys/unseal", `Content-Type: ${type}\r\n`)).status, `unseal ${type}`).toBe(415);
      }
    });

    it("spends a use-limited token's use only on a request that was authorised, whatever refused the others", async () => {
      const token = (await root("POST", "/v1/auth/token/create", { policies: ["constrained"], num_uses: 2 })).body.auth
        .client_token as string;
      const refusals: Array<[string, string, unknown]> = [
        ["GET", "/v1/secret/data/elsewhere", undefined], // no capability
        ["POST", "/v1/kv1/allowed/b", { bar: "x" }], // a parameter constraint
        ["GET", "/v1/sys/mounts", undefined], // a sys path it has nothing on
        ["GET", "/v1/secret/data/readable/x?list=1", undefined], // a list it may not do
      ];
      for (let round = 0; round < 3; round++) {
        for (const [method, path, body] of refusals) expect((await as(token, method, path, body)).status, path).toBe(403);
      }
      // Both uses are left: two authorised requests succeed, and then the token is gone.
      expect((await as(token, "GET", "/v1/secret/data/readable/x")).status).toBe(200);
      expect((await as(token, "GET", "/v1/secret/data/readable/x")).status).toBe(200);
      expect((await as(token, "GET", "/v1/secret/data/readable/x")).status).toBe(403);
    });
  });
}
