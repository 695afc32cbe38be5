import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type JsonBody, startTestServer, type TestServer } from "@egide/test-server";

// Response wrapping end to end: real servers over real SQLite files and real PostgreSQL
// databases, real clocks (the expiry test really waits).

type Reply = Awaited<ReturnType<typeof call>>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const WRAP_INFO_KEYS = ["accessor", "creation_path", "creation_time", "token", "ttl"];

for (const storage of ["sqlite", "postgresql"] as const) {
  describe(`response wrapping over ${storage}`, () => {
    let ts: TestServer;
    let root: string;

    const req = (
      method: string,
      path: string,
      options: { token?: string | null; body?: unknown; wrap?: string; headers?: Record<string, string> } = {},
    ): Promise<Reply> => {
      const headers: Record<string, string> = { ...options.headers };
      if (options.wrap !== undefined) headers["x-vault-wrap-ttl"] = options.wrap;
      return call(ts.url, method, path, {
        ...(options.token === null ? {} : { token: options.token ?? root }),
        ...(options.body === undefined ? {} : { body: options.body }),
        headers,
      });
    };

    const putPolicy = async (name: string, policy: string) => {
      const reply = await req("PUT", `/v1/sys/policies/acl/${name}`, { body: { policy } });
      expect(reply.status, JSON.stringify(reply.body)).toBe(204);
    };
    const tokenWith = async (policies: string[]) => {
      const reply = await req("POST", "/v1/auth/token/create", { body: { policies, ttl: "1h" } });
      expect(reply.status, JSON.stringify(reply.body)).toBe(200);
      return reply.body.auth.client_token as string;
    };
    const wrapInfoOf = (reply: Reply) => {
      expect(reply.status, JSON.stringify(reply.body)).toBe(200);
      return reply.body.wrap_info as { token: string; accessor: string; ttl: number; creation_time: string; creation_path: string };
    };

    beforeAll(async () => {
      ts = await startTestServer({ storage, label: "wrapping" });
      root = ts.rootToken;
      const write = await req("POST", "/v1/secret/data/app/db", { body: { data: { password: "hunter2-wrapped" } } });
      expect(write.status, JSON.stringify(write.body)).toBe(200);
    }, 30_000);

    afterAll(async () => {
      await ts?.close();
    });

    it("a wrapped KV read answers only wrap_info; one unwrap returns the secret as the read would; a second is 400", async () => {
      const plain = await req("GET", "/v1/secret/data/app/db");
      expect(plain.status).toBe(200);
      const wrapped = await req("GET", "/v1/secret/data/app/db", { wrap: "5m" });
      expect(wrapped.status, JSON.stringify(wrapped.body)).toBe(200);
      expect(Object.keys(wrapped.body).sort()).toEqual(
        ["auth", "data", "lease_duration", "lease_id", "renewable", "request_id", "warnings", "wrap_info"].sort(),
      );
      expect(wrapped.body).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, data: null, warnings: null, auth: null });
      expect(JSON.stringify(wrapped.body)).not.toContain("hunter2-wrapped");
      const info = wrapInfoOf(wrapped);
      expect(Object.keys(info).sort()).toEqual(WRAP_INFO_KEYS);
      expect(info.ttl).toBe(300);
      expect(info.creation_path).toBe("secret/data/app/db");
      expect(info.token).toMatch(/^egs\./);
      expect(Date.parse(info.creation_time)).toBeGreaterThan(Date.now() - 60_000);

      const unwrapped = await req("POST", "/v1/sys/wrapping/unwrap", { token: info.token });
      expect(unwrapped.status, JSON.stringify(unwrapped.body)).toBe(200);
      const { request_id: _a, ...original } = plain.body;
      const { request_id: _b, ...fromWrap } = unwrapped.body;
      expect(fromWrap).toEqual(original);
      expect(unwrapped.body.data.data).toEqual({ password: "hunter2-wrapped" });

      const again = await req("POST", "/v1/sys/wrapping/unwrap", { token: info.token });
      expect(again.status).toBe(400);
      expect(again.body).toEqual({ errors: ["wrapping token is not valid or does not exist"] });
      // Third party too: the token is gone.
      const third = await req("POST", "/v1/sys/wrapping/unwrap", { body: { token: info.token } });
      expect(third.status).toBe(400);
      expect(third.body.errors).toEqual(["wrapping token is not valid or does not exist"]);
    });

    it("unwrap by a third party (token in the body, the caller's own token in the header), once", async () => {
      const reader = await tokenWith(["default"]);
      const info = wrapInfoOf(await req("GET", "/v1/secret/data/app/db", { wrap: "120" }));
      expect(info.ttl).toBe(120);
      const unwrapped = await req("POST", "/v1/sys/wrapping/unwrap", { token: reader, body: { token: info.token } });
      expect(unwrapped.status, JSON.stringify(unwrapped.body)).toBe(200);
      expect(unwrapped.body.data.data).toEqual({ password: "hunter2-wrapped" });
      expect((await req("POST", "/v1/sys/wrapping/unwrap", { token: reader, body: { token: info.token } })).status).toBe(400);
      // Someone else's token, or no wrapping token at all.
      expect((await req("POST", "/v1/sys/wrapping/unwrap", { token: reader })).status).toBe(400);
      const empty = await req("POST", "/v1/sys/wrapping/unwrap", { token: reader, body: { token: "" } });
      expect(empty.status).toBe(403);
      expect(empty.body.errors).toEqual(["error validating wrapping token: empty token in request body"]);
    });

    it("X-Vault-Wrap-TTL: invalid, negative or zero is 400 before anything runs; a TTL is capped at max_lease_ttl", async () => {
      for (const [value, message] of [
        ["soon", 'error parsing X-Vault-Wrap-TTL header: time: invalid duration "soon"'],
        ["-5m", "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"],
        ["-1", "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"],
        ["0", "error parsing X-Vault-Wrap-TTL header: requested wrap ttl must be at least 1s"],
      ] as const) {
        const write = await req("POST", "/v1/secret/data/app/never", { wrap: value, body: { data: { x: 1 } } });
        expect(write.status, value).toBe(400);
        expect(write.body.errors, value).toEqual([message]);
      }
      expect((await req("GET", "/v1/secret/data/app/never")).status).toBe(404);
      // The default max_lease_ttl is 32 days (768h).
      const info = wrapInfoOf(await req("GET", "/v1/secret/data/app/db", { wrap: "100000h" }));
      expect(info.ttl).toBe(768 * 3600);
    });

    it("sys/wrapping/wrap, lookup and rewrap answer as Vault's documentation shows", async () => {
      const missing = await req("POST", "/v1/sys/wrapping/wrap", { body: { foo: "bar" } });
      expect(missing.status).toBe(400);
      expect(missing.body.errors).toEqual(["endpoint requires response wrapping to be used"]);

      const wrapped = await req("POST", "/v1/sys/wrapping/wrap", { wrap: "1h", body: { foo: "bar", zip: "zap" } });
      const info = wrapInfoOf(wrapped);
      expect(info).toMatchObject({ ttl: 3600, creation_path: "sys/wrapping/wrap" });
      expect(Object.keys(info).sort()).toEqual(WRAP_INFO_KEYS);
      expect(wrapped.body.data).toBeNull();

      // lookup: unauthenticated, and it does not use the token.
      for (let i = 0; i < 2; i++) {
        const lookup = await req("POST", "/v1/sys/wrapping/lookup", { token: null, body: { token: info.token } });
        expect(lookup.status, JSON.stringify(lookup.body)).toBe(200);
        expect(lookup.body.data).toEqual({ creation_path: "sys/wrapping/wrap", creation_time: info.creation_time, creation_ttl: 3600 });
      }
      const badLookup = await req("POST", "/v1/sys/wrapping/lookup", { token: null, body: { token: root } });
      expect(badLookup.status).toBe(400);
      expect(badLookup.body.errors).toEqual(["wrapping token is not valid or does not exist"]);

      const rewrapped = await req("POST", "/v1/sys/wrapping/rewrap", { body: { token: info.token } });
      const info2 = wrapInfoOf(rewrapped);
      expect(info2.token).not.toBe(info.token);
      expect(info2).toMatchObject({ ttl: 3600, creation_path: "sys/wrapping/wrap" });
      // The old token is invalid now: lookup, unwrap and rewrap refuse it.
      expect((await req("POST", "/v1/sys/wrapping/lookup", { token: null, body: { token: info.token } })).status).toBe(400);
      expect((await req("POST", "/v1/sys/wrapping/unwrap", { token: info.token })).status).toBe(400);
      expect((await req("POST", "/v1/sys/wrapping/rewrap", { body: { token: info.token } })).status).toBe(400);

      const unwrapped = await req("POST", "/v1/sys/wrapping/unwrap", { token: info2.token });
      expect(unwrapped.status, JSON.stringify(unwrapped.body)).toBe(200);
      expect(unwrapped.body.data).toEqual({ foo: "bar", zip: "zap" });
    });

    it("an expired wrapping token cannot unwrap (real time)", async () => {
      const info = wrapInfoOf(await req("POST", "/v1/sys/wrapping/wrap", { wrap: "1s", body: { short: "lived" } }));
      expect(info.ttl).toBe(1);
      await sleep(1300);
      expect((await req("POST", "/v1/sys/wrapping/lookup", { token: null, body: { token: info.token } })).status).toBe(400);
      const late = await req("POST", "/v1/sys/wrapping/unwrap", { body: { token: info.token } });
      expect(late.status).toBe(400);
      expect(late.body.errors).toEqual(["wrapping token is not valid or does not exist"]);
      // As the request's own token too.
      expect((await req("POST", "/v1/sys/wrapping/unwrap", { token: info.token })).status).toBe(400);
    });

    it("min_wrapping_ttl / max_wrapping_ttl are enforced; a path with a minimum refuses an unwrapped request", async () => {
      await putPolicy(
        "wrap-bounds",
        `path "secret/data/app/*" {\n  capabilities = ["read"]\n  min_wrapping_ttl = "1m"\n  max_wrapping_ttl = "10m"\n}`,
      );
      const bounded = await tokenWith(["wrap-bounds"]);
      const denied = (reply: Reply) => {
        expect(reply.status, JSON.stringify(reply.body)).toBe(403);
        expect(reply.body.errors).toEqual(["permission denied"]);
      };
      denied(await req("GET", "/v1/secret/data/app/db", { token: bounded }));
      denied(await req("GET", "/v1/secret/data/app/db", { token: bounded, wrap: "30s" }));
      denied(await req("GET", "/v1/secret/data/app/db", { token: bounded, wrap: "11m" }));
      const info = wrapInfoOf(await req("GET", "/v1/secret/data/app/db", { token: bounded, wrap: "5m" }));
      const unwrapped = await req("POST", "/v1/sys/wrapping/unwrap", { token: info.token });
      expect(unwrapped.body.data.data).toEqual({ password: "hunter2-wrapped" });
      // Only a maximum: unwrapped requests are refused too (Vault: req.WrapInfo == nil).
      await putPolicy("wrap-max", `path "secret/data/app/*" {\n  capabilities = ["read"]\n  max_wrapping_ttl = "10m"\n}`);
      const maxOnly = await tokenWith(["wrap-max"]);
      denied(await req("GET", "/v1/secret/data/app/db", { token: maxOnly }));
      expect((await req("GET", "/v1/secret/data/app/db", { token: maxOnly, wrap: "10m" })).status).toBe(200);
    });

    it("a wrapping token can do nothing but unwrap: 403 elsewhere, no token creation, no policy", async () => {
      const attempts: Array<[string, string, unknown?]> = [
        ["GET", "/v1/secret/data/app/db"],
        ["GET", "/v1/auth/token/lookup-self"],
        ["POST", "/v1/auth/token/create", { policies: ["default"] }],
        ["POST", "/v1/sys/wrapping/wrap", { a: 1 }],
        ["POST", "/v1/sys/wrapping/rewrap", {}],
        ["GET", "/v1/sys/policies/acl/response-wrapping"],
      ];
      for (const [method, path, body] of attempts) {
        const info = wrapInfoOf(await req("GET", "/v1/secret/data/app/db", { wrap: "5m" }));
        const reply = await req(method, path, { token: info.token, ...(body === undefined ? {} : { body }) });
        expect(reply.status, `${method} ${path}: ${JSON.stringify(reply.body)}`).toBe(403);
        expect(JSON.stringify(reply.body)).not.toContain("hunter2-wrapped");
      }
      // The policy is built in: neither writable, deletable nor assignable; not listed.
      const write = await req("PUT", "/v1/sys/policies/acl/response-wrapping", {
        body: { policy: `path "*" { capabilities = ["sudo", "read"] }` },
      });
      expect(write.status).toBe(400);
      expect(write.body.errors).toEqual(['cannot update "response-wrapping" policy']);
      const remove = await req("DELETE", "/v1/sys/policies/acl/response-wrapping");
      expect(remove.status).toBe(400);
      expect(remove.body.errors).toEqual(['cannot delete "response-wrapping" policy']);
      const assign = await req("POST", "/v1/auth/token/create", { body: { policies: ["response-wrapping"] } });
      expect(assign.status).toBe(400);
      expect((await req("LIST", "/v1/sys/policies/acl")).body.data.keys).not.toContain("response-wrapping");
      // The default policy holds Vault's wrapping entries.
      const defaults = await req("GET", "/v1/sys/policies/acl/default");
      for (const path of ["sys/wrapping/wrap", "sys/wrapping/lookup", "sys/wrapping/unwrap"]) {
        expect(defaults.body.data.policy).toContain(`path "${path}"`);
      }
    });

    it("a wrapped token creation returns wrapped_accessor; the unwrapped response holds the auth block", async () => {
      const wrapped = await req("POST", "/v1/auth/token/create", { wrap: "5m", body: { policies: ["default"], ttl: "1h" } });
      const info = wrapInfoOf(wrapped);
      expect(wrapped.body.auth).toBeNull();
      expect(info.creation_path).toBe("auth/token/create");
      const wrappedAccessor = (info as unknown as { wrapped_accessor: string }).wrapped_accessor;
      expect(wrappedAccessor).toMatch(/^[A-Za-z0-9_-]{16}$/);
      const unwrapped = await req("POST", "/v1/sys/wrapping/unwrap", { token: info.token });
      expect(unwrapped.status, JSON.stringify(unwrapped.body)).toBe(200);
      const auth = unwrapped.body.auth as JsonBody;
      expect(auth.accessor).toBe(wrappedAccessor);
      expect(auth.policies).toEqual(["default"]);
      // The token inside works.
      const self = await req("GET", "/v1/auth/token/lookup-self", { token: auth.client_token });
      expect(self.status).toBe(200);
      expect(self.body.data.accessor).toBe(wrappedAccessor);
    });

    it("a bodiless answer (204) is not wrapped; an unauthenticated non-login endpoint refuses wrapping", async () => {
      const write = await req("PUT", "/v1/sys/policies/acl/wrap-204", {
        wrap: "5m",
        body: { policy: `path "x" { capabilities = ["read"] }` },
      });
      expect(write.status).toBe(204);
      const health = await req("GET", "/v1/sys/health", { token: null, wrap: "5m" });
      expect(health.status).toBe(400);
      expect(health.body.errors).toEqual(["response wrapping is not available on this endpoint"]);
    });
  });
}

describe("two instances sharing PostgreSQL", () => {
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    a = await startTestServer({ storage: "postgresql", label: "wrapping-multi" });
    b = await startTestServer({ storage: "postgresql", postgres: a.postgres as { database: string; schema: string } });
    for (const key of a.keys) {
      expect((await call(b.url, "PUT", "/v1/sys/unseal", { body: { key: key.toString("hex") } })).status).toBe(200);
    }
    const write = await call(a.url, "POST", "/v1/secret/data/race", { token: a.rootToken, body: { data: { v: "once" } } });
    expect(write.status).toBe(200);
  }, 30_000);

  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it("concurrent unwraps of one token on two instances: exactly one succeeds", async () => {
    for (let round = 0; round < 5; round++) {
      const wrapped = await call(a.url, "GET", "/v1/secret/data/race", { token: a.rootToken, headers: { "x-vault-wrap-ttl": "5m" } });
      expect(wrapped.status).toBe(200);
      const token = wrapped.body.wrap_info.token as string;
      const replies = await Promise.all(
        [a, b, a, b].map((server, i) =>
          i % 2 === 0
            ? call(server.url, "POST", "/v1/sys/wrapping/unwrap", { token })
            : call(server.url, "POST", "/v1/sys/wrapping/unwrap", { token: a.rootToken, body: { token } }),
        ),
      );
      const statuses = replies.map((reply) => reply.status);
      expect(
        statuses.filter((status) => status === 200),
        JSON.stringify(statuses),
      ).toHaveLength(1);
      for (const reply of replies) {
        if (reply.status === 200) expect(reply.body.data.data).toEqual({ v: "once" });
        else expect(reply.body).toEqual({ errors: ["wrapping token is not valid or does not exist"] });
      }
    }
  }, 60_000);
});
