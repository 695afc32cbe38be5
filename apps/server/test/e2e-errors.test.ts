/**
 * End to end: hostile and malformed requests against a real server (real HTTP on 127.0.0.1,
 * raw TCP where `fetch` would refuse or normalise the request), over SQLite and PostgreSQL.
 * Every answer is a 4xx in Vault's shape, never a 500, never a crash, and the server keeps
 * answering afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, rawHttp, startTestServer, type TestServer } from "@egide/test-server";

const MAX_REQUEST_SIZE = 65_536;
const BAD_JSON = { errors: ["failed to parse JSON input: the request body is not valid JSON"] };
const DENIED = { errors: ["permission denied"] };
const TOO_LARGE = { errors: ["request body is too large"] };

/** A raw HTTP/1.1 request with `Connection: close` and, when given, a body with its Content-Length. */
function rawRequest(method: string, target: string, options: { token?: string; body?: string | Buffer; headers?: string[] } = {}): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close", ...(options.headers ?? [])];
  if (options.token) lines.push(`X-Vault-Token: ${options.token}`);
  const body =
    options.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body, "utf8");
  if (options.body !== undefined) lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), body]);
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

describe.each([["sqlite"], ["postgresql"]] as const)("errors over %s", (storage) => {
  let server: TestServer;
  let url = "";
  let token = "";

  /** The server still answers: health 200, a write and a read of a secret. */
  async function expectAlive(): Promise<void> {
    const health = await call(url, "GET", "/v1/sys/health");
    expect(health.status).toBe(200);
    const value = `v${Math.random()}`;
    expect((await call(url, "PUT", "/v1/secret/data/alive", { token, body: { data: { value } } })).status).toBe(200);
    expect((await call(url, "GET", "/v1/secret/data/alive", { token })).body.data.data).toEqual({ value });
  }

  beforeAll(async () => {
    server = await startTestServer({ storage, listenerToml: `max_request_size = ${MAX_REQUEST_SIZE}` });
    url = server.url;
    token = server.rootToken;
  }, 30_000);

  afterAll(async () => {
    await server?.close();
  });

  describe("bodies", () => {
    it("malformed JSON is 400 with a clear message, whatever the Content-Type and the endpoint", async () => {
      const bodies: Array<string | Buffer> = [
        '{"data":',
        "{data: {a: 1}}",
        "not json",
        '{"data":{"a":1}} trailing',
        '\ufeff{"data":{}}',
        Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
      ];
      const contentTypes = [undefined, "application/json", "text/plain", "application/x-www-form-urlencoded"];
      const problems: string[] = [];
      for (const body of bodies) {
        for (const contentType of contentTypes) {
          const response = await fetch(`${url}/v1/secret/data/bad-json`, {
            method: "PUT",
            headers: { "x-vault-token": token, ...(contentType ? { "content-type": contentType } : {}) },
            body,
          });
          const text = await response.text();
          if (response.status !== 400 || text !== JSON.stringify(BAD_JSON))
            problems.push(`${JSON.stringify(body.toString())} as ${contentType}: ${response.status} ${text}`);
        }
      }
      // The same on PATCH (merge-patch parser) and on sys and auth endpoints.
      const patch = await call(url, "PATCH", "/v1/secret/data/bad-json", {
        token,
        rawBody: '{"data":',
        headers: { "content-type": "application/merge-patch+json" },
      });
      if (patch.status !== 400 || JSON.stringify(patch.body) !== JSON.stringify(BAD_JSON))
        problems.push(`PATCH: ${patch.status} ${JSON.stringify(patch.body)}`);
      for (const [method, path] of [
        ["PUT", "/v1/sys/unseal"],
        ["PUT", "/v1/sys/init"],
        ["POST", "/v1/sys/mounts/bad"],
        ["PUT", "/v1/sys/policies/acl/bad"],
        ["POST", "/v1/auth/token/create"],
        ["POST", "/v1/secret/metadata/bad-json"],
        ["POST", "/v1/secret/config"],
        ["POST", "/v1/secret/destroy/bad-json"],
      ] as const) {
        const response = await call(url, method, path, { token, rawBody: "{oops", headers: { "content-type": "application/json" } });
        if (response.status !== 400 || JSON.stringify(response.body) !== JSON.stringify(BAD_JSON))
          problems.push(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
      }
      expect(problems).toEqual([]);
      expect((await call(url, "GET", "/v1/secret/data/bad-json", { token })).status).toBe(404);
      await expectAlive();
    });

    it("JSON that is not an object is 400", async () => {
      for (const body of ["[1,2]", '"text"', "42", "true"]) {
        const response = await call(url, "PUT", "/v1/secret/data/not-object", {
          token,
          rawBody: body,
          headers: { "content-type": "application/json" },
        });
        expect(response.status, body).toBe(400);
        expect(response.body, body).toEqual({ errors: ["the request body must be a JSON object"] });
      }
      const nullBody = await call(url, "PUT", "/v1/secret/data/not-object", { token, rawBody: "null" });
      expect(nullBody.status).toBe(400);
      expect(nullBody.body).toEqual({ errors: ["no data provided"] });
      await expectAlive();
    });

    it("__proto__ and constructor keys are stored as data and pollute nothing", async () => {
      const body = '{"__proto__":{"polluted":1},"data":{"__proto__":{"polluted":2},"constructor":{"prototype":{"polluted":3}}}}';
      const write = await call(url, "PUT", "/v1/secret/data/proto", { token, rawBody: body });
      expect(write.status).toBe(200);
      const patch = await call(url, "PATCH", "/v1/secret/data/proto", {
        token,
        rawBody: '{"data":{"__proto__":{"polluted":4}}}',
        headers: { "content-type": "application/merge-patch+json" },
      });
      expect(patch.status).toBe(200);
      const read = await call(url, "GET", "/v1/secret/data/proto", { token });
      expect(read.status).toBe(200);
      expect(JSON.stringify(read.body.data.data)).toBe('{"__proto__":{"polluted":4},"constructor":{"prototype":{"polluted":3}}}');
      // The server runs in this process: nothing leaked into Object.prototype.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      await expectAlive();
    });

    it("a deeply nested JSON value (5 000 and 20 000 levels) is refused with 400, never a 500 from a stack overflow", async () => {
      // Vault (Go's encoding/json) accepts up to 10 000 levels and refuses deeper input with
      // 400 "failed to parse JSON input: ... exceeded max depth". Egide parses it, then
      // JSON.stringify in KvV2Engine#addVersion overflows the stack: 500 "internal error".
      const outcomes: string[] = [];
      for (const depth of [5_000, 20_000]) {
        const nested = `${"[".repeat(depth)}${"]".repeat(depth)}`;
        const write = await call(url, "PUT", `/v1/secret/data/deep-${depth}`, { token, rawBody: `{"data":{"a":${nested}}}` });
        outcomes.push(`PUT depth ${depth}: ${write.status} ${JSON.stringify(write.body).slice(0, 100)}`);
        expect(write.status, outcomes.join("\n")).toBeLessThan(500);
        if (depth > 10_000) expect(write.status, outcomes.join("\n")).toBe(400);
      }
      await expectAlive();
    });

    it("a deeply nested merge patch (5 000 levels) is refused with 400, never a 500 from a stack overflow", async () => {
      await call(url, "PUT", "/v1/secret/data/deep-patch", { token, body: { data: { a: 1 } } });
      const depth = 5_000;
      const patch = await call(url, "PATCH", "/v1/secret/data/deep-patch", {
        token,
        rawBody: `{"data":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`,
        headers: { "content-type": "application/merge-patch+json" },
      });
      expect(patch.status, JSON.stringify(patch.body)).toBeLessThan(500);
      await expectAlive();
    });

    it(`a body over max_request_size (${MAX_REQUEST_SIZE} bytes) is 413, by Content-Length, chunked, or announced and never sent`, async () => {
      const big = JSON.stringify({ data: { v: "x".repeat(MAX_REQUEST_SIZE) } });
      const byLength = await call(url, "PUT", "/v1/secret/data/big", {
        token,
        rawBody: big,
        headers: { "content-type": "application/json" },
      });
      expect(byLength.status).toBe(413);
      expect(byLength.body).toEqual(TOO_LARGE);

      const chunkSize = 8192;
      const chunks = Array.from({ length: 10 }, () => `${chunkSize.toString(16)}\r\n${"a".repeat(chunkSize)}\r\n`).join("");
      const chunked = await rawHttp(
        url,
        `PUT /v1/secret/data/big HTTP/1.1\r\nHost: x\r\nX-Vault-Token: ${token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks}0\r\n\r\n`,
      );
      expect(chunked.status).toBe(413);
      expect(parse(chunked.body)).toEqual(TOO_LARGE);

      // Refused from the header alone: the server does not wait for 100 MB that never come.
      const started = performance.now();
      const announced = await rawHttp(
        url,
        `PUT /v1/secret/data/big HTTP/1.1\r\nHost: x\r\nX-Vault-Token: ${token}\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n{`,
        3000,
      );
      expect(announced.timedOut).toBe(false);
      expect(announced.status).toBe(413);
      expect(performance.now() - started).toBeLessThan(2000);

      // Just under the limit is fine; nothing of the refused writes was stored.
      const fits = await call(url, "PUT", "/v1/secret/data/big", { token, body: { data: { v: "y".repeat(MAX_REQUEST_SIZE - 1000) } } });
      expect(fits.status).toBe(200);
      expect(fits.body.data.version).toBe(1);
      await expectAlive();
    });
  });

  describe("paths", () => {
    it("invalid secret paths are 4xx: empty segments, control characters, '..', over 1024 bytes, over the header limit", async () => {
      const long = "a".repeat(1100);
      const cases: Array<{ method: string; target: string; body?: string; status?: number; error?: string }> = [
        // Refused as requests before any route or check sees them (the canonical request).
        { method: "GET", target: "/v1/secret/data/a//b", status: 400, error: "invalid request path" },
        { method: "PUT", target: "/v1/secret/data/a//b", body: '{"data":{"a":1}}', status: 400, error: "invalid request path" },
        { method: "PUT", target: "/v1/secret/data/x%01y", body: '{"data":{"a":1}}', status: 400, error: "invalid request path" },
        { method: "GET", target: "/v1/secret/data/../x", status: 400, error: "invalid request path" },
        { method: "PUT", target: "/v1/secret/data/../x", body: '{"data":{"a":1}}', status: 400, error: "invalid request path" },
        { method: "PUT", target: "/v1/secret/data/%2e%2e/x", body: '{"data":{"a":1}}', status: 400, error: "invalid request path" },
        { method: "PUT", target: "/v1/secret/data/./x", body: '{"data":{"a":1}}', status: 400, error: "invalid request path" },
        { method: "POST", target: "/v1/secret/metadata/a//b", body: '{"max_versions":1}', status: 400 },
        { method: "GET", target: `/v1/secret/data/${long}`, status: 404 },
        { method: "PUT", target: `/v1/secret/data/${long}`, body: '{"data":{"a":1}}', status: 400, error: "longer than" },
        { method: "POST", target: `/v1/secret/metadata/${long}`, body: '{"max_versions":1}', status: 400, error: "longer than" },
        { method: "LIST", target: `/v1/secret/metadata/${long}`, status: 404 },
        { method: "GET", target: `/v1/secret/data/${"b".repeat(20_000)}`, status: 431 },
        { method: "PUT", target: `/v1/secret/data/${"c".repeat(100_000)}`, body: '{"data":{"a":1}}', status: 431 },
        // Traversal must never reach another route (here: sys/seal).
        { method: "PUT", target: "/v1/secret/data/a/../../../sys/seal", body: "" },
        { method: "PUT", target: "/v1/secret/../sys/seal", body: "" },
        { method: "PUT", target: "/v1/../v1/sys/seal", body: "" },
        { method: "PUT", target: "/v1/secret/data/%2e%2e/%2e%2e/%2e%2e/sys/seal", body: "" },
        { method: "GET", target: "/v1/secret/data/%ZZ" },
      ];
      const problems: string[] = [];
      for (const c of cases) {
        const response = await rawHttp(url, rawRequest(c.method, c.target, { token, ...(c.body !== undefined ? { body: c.body } : {}) }));
        const label = `${c.method} ${c.target.slice(0, 60)}: ${response.status} ${response.body.slice(0, 120)}`;
        if (response.status < 400 || response.status >= 500) problems.push(`not 4xx: ${label}`);
        else if (c.status !== undefined && response.status !== c.status) problems.push(`expected ${c.status}: ${label}`);
        else if (c.error !== undefined && !response.body.includes(c.error)) problems.push(`expected "${c.error}": ${label}`);
      }
      expect(problems).toEqual([]);
      expect((await call(url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(false);
      await expectAlive();
    });

    it("a NUL (%00) in the path gets its 4xx and is audited (the path is written percent-encoded, which PostgreSQL accepts)", async () => {
      // PostgreSQL text/jsonb columns cannot hold U+0000; the audit row of the request carries
      // the decoded path (audit-entry.ts: path: state.path), so its INSERT fails and
      // build-app.ts replaces the 404/400/403 with a 500. Vault answers 404/400 (403 without
      // a token) and audits the request. Over SQLite this passes.
      const cases: Array<{ method: string; target: string; token?: string; body?: string; status: number }> = [
        // A control character makes the request path invalid: 400 before any check, token or not.
        { method: "GET", target: "/v1/secret/data/nul-%00x", token, status: 400 },
        { method: "PUT", target: "/v1/secret/data/nul-%00x", token, body: '{"data":{"a":1}}', status: 400 },
        { method: "GET", target: "/v1/secret/data/nul-%00x", status: 400 },
        { method: "LIST", target: "/v1/secret/metadata/nul-%00x", token, status: 400 },
        {
          method: "PUT",
          target: "/v1/sys/policies/acl/nul-%00",
          token,
          body: '{"policy":"path \\"x\\" { capabilities = [\\"read\\"] }"}',
          status: 400,
        },
      ];
      const outcomes: string[] = [];
      for (const c of cases) {
        const response = await rawHttp(
          url,
          rawRequest(c.method, c.target, { ...(c.token ? { token: c.token } : {}), ...(c.body !== undefined ? { body: c.body } : {}) }),
        );
        outcomes.push(`${c.method} ${c.target}${c.token ? "" : " (no token)"}: ${response.status} ${response.body.slice(0, 100)}`);
      }
      expect
        .soft(outcomes)
        .toEqual(cases.map((c) => expect.stringContaining(`${c.method} ${c.target}${c.token ? "" : " (no token)"}: ${c.status} `)));
      // The three secret/data/nul-… requests are in the audit log.
      const audit = await call(url, "GET", "/v1/sys/audit-log?path_prefix=secret/data/nul-", { token });
      expect(audit.status).toBe(200);
      // (However a fix stores the NUL, the row names the path and records a failure.)
      const entries = audit.body.data.entries as Array<{ path: string; success: boolean }>;
      expect(entries.map((entry) => entry.success)).toEqual([false, false, false]);
      for (const entry of entries) expect(entry.path).toMatch(/^secret\/data\/nul-.+x$/);
      await expectAlive();
    });

    it("unknown routes are 404: {errors: []} outside a mount, Vault's messages inside /v1/", async () => {
      for (const path of ["/", "/nope", "/v1", "/v2/secret/data/x", "/ui/"]) {
        const response = await call(url, "GET", path, { token });
        expect(response.status, path).toBe(404);
        expect(response.body, path).toEqual({ errors: [] });
      }
      const list = await rawHttp(url, rawRequest("LIST", "/nope"));
      expect(list.status).toBe(404);
      expect(parse(list.body)).toEqual({ errors: [] });

      const noMount = await call(url, "GET", "/v1/nomount/x", { token });
      expect(noMount.status).toBe(404);
      expect(noMount.body).toEqual({ errors: ['no handler for route "nomount/x". route entry not found.'] });
      const unsupported = await call(url, "GET", "/v1/secret/foo/x", { token });
      expect(unsupported.status).toBe(404);
      expect(unsupported.body.errors[0]).toContain("unsupported path");
      // Without a token, Vault checks the token first.
      expect((await call(url, "GET", "/v1/nomount/x")).status).toBe(403);
      await expectAlive();
    });
  });

  describe("methods", () => {
    it("unknown or unsupported methods are 4xx (PROPFIND, FOO, lowercase, garbage), and the server survives CONNECT", async () => {
      const problems: string[] = [];
      for (const method of ["PROPFIND", "OPTIONS", "MKCOL", "REPORT"]) {
        const response = await call(url, method, "/v1/secret/data/x", { token });
        if (response.status < 400 || response.status >= 500) problems.push(`fetch ${method}: ${response.status}`);
      }
      const raws: Array<[string, string | Buffer]> = [
        ["FOO", rawRequest("FOO", "/v1/secret/data/x", { token })],
        ["TRACE", rawRequest("TRACE", "/v1/secret/data/x", { token })],
        ["PROPFIND", rawRequest("PROPFIND", "/v1/secret/metadata/", { token })],
        ["LIST-ish", rawRequest("LISTS", "/v1/secret/metadata/", { token })],
        ["lowercase", rawRequest("get", "/v1/sys/health")],
        ["garbage", Buffer.from([0x00, 0x01, 0x02, 0x0d, 0x0a, 0x0d, 0x0a])],
        ["HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
        ["bad header", "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"],
        ["two lengths", "PUT /v1/secret/data/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"],
        [
          "length and chunked",
          `PUT /v1/secret/data/x HTTP/1.1\r\nHost: x\r\nX-Vault-Token: ${token}\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        ],
      ];
      for (const [name, request] of raws) {
        const response = await rawHttp(url, request);
        if (response.status < 400 || response.status >= 500) problems.push(`raw ${name}: ${response.status} ${response.raw.slice(0, 100)}`);
      }
      expect(problems).toEqual([]);
      await rawHttp(url, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 2000);
      await expectAlive();
    });
  });

  describe("authentication", () => {
    it("no token is 403 permission denied on every protected endpoint", async () => {
      const endpoints: Array<[string, string, unknown?]> = [
        ["GET", "/v1/secret/data/alive"],
        ["PUT", "/v1/secret/data/alive", { data: { a: 1 } }],
        ["PATCH", "/v1/secret/data/alive", { data: { a: 1 } }],
        ["DELETE", "/v1/secret/data/alive"],
        ["LIST", "/v1/secret/metadata/"],
        ["GET", "/v1/secret/metadata/?list=true"],
        ["GET", "/v1/secret/metadata/alive"],
        ["DELETE", "/v1/secret/metadata/alive"],
        ["POST", "/v1/secret/destroy/alive", { versions: [1] }],
        ["GET", "/v1/secret/config"],
        ["GET", "/v1/sys/mounts"],
        ["POST", "/v1/sys/mounts/other", { type: "kv", options: { version: "2" } }],
        ["GET", "/v1/sys/policies/acl"],
        ["PUT", "/v1/sys/policies/acl/p", { policy: 'path "*" { capabilities = ["sudo"] }' }],
        ["PUT", "/v1/sys/seal"],
        ["POST", "/v1/sys/rotate"],
        ["GET", "/v1/sys/key-status"],
        ["GET", "/v1/sys/audit-log"],
        ["GET", "/v1/sys/metrics"],
        ["POST", "/v1/auth/token/create", {}],
        ["GET", "/v1/auth/token/lookup-self"],
      ];
      const problems: string[] = [];
      for (const [method, path, body] of endpoints) {
        const response = await call(url, method, path, {
          ...(body !== undefined ? { body } : {}),
          ...(method === "PATCH" ? { headers: { "content-type": "application/merge-patch+json" } } : {}),
        });
        if (response.status !== 403 || JSON.stringify(response.body) !== JSON.stringify(DENIED))
          problems.push(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
      }
      expect(problems).toEqual([]);
      expect((await call(url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(false);
      await expectAlive();
    });

    it("a bad token is 403: unknown, empty, very long, revoked, or in a malformed Authorization header", async () => {
      const child = await call(url, "POST", "/v1/auth/token/create", { token, body: { policies: ["default"] } });
      expect(child.status).toBe(200);
      const childToken: string = child.body.auth.client_token;
      expect((await call(url, "GET", "/v1/auth/token/lookup-self", { token: childToken })).status).toBe(200);
      expect((await call(url, "POST", "/v1/auth/token/revoke-self", { token: childToken })).status).toBe(204);

      const attempts: Array<[string, Record<string, string>]> = [
        ["unknown", { "x-vault-token": "hvs.not-a-token" }],
        ["empty", { "x-vault-token": "" }],
        ["long", { "x-vault-token": "t".repeat(8000) }],
        ["revoked", { "x-vault-token": childToken }],
        ["root with a suffix", { "x-vault-token": `${token}x` }],
        ["bearer unknown", { authorization: "Bearer nope" }],
        ["bearer empty", { authorization: "Bearer " }],
        ["basic", { authorization: `Basic ${Buffer.from(`root:${token}`).toString("base64")}` }],
        ["bare token in Authorization", { authorization: token }],
        ["egide unknown", { "x-egide-token": "nope" }],
        // X-Vault-Token comes first: a bad one is not rescued by a good Bearer.
        ["bad vault, good bearer", { "x-vault-token": "nope", authorization: `Bearer ${token}` }],
      ];
      const problems: string[] = [];
      for (const [name, headers] of attempts) {
        const response = await call(url, "GET", "/v1/secret/data/alive", { headers });
        if (response.status !== 403 || JSON.stringify(response.body) !== JSON.stringify(DENIED))
          problems.push(`${name}: ${response.status} ${JSON.stringify(response.body)}`);
      }
      expect(problems).toEqual([]);
      await expectAlive();
    });

    it("X-Egide-Token and Authorization: Bearer work like X-Vault-Token", async () => {
      const limited = await call(url, "POST", "/v1/auth/token/create", { token, body: { policies: ["default"] } });
      const limitedToken: string = limited.body.auth.client_token;
      const forms: Array<[string, (t: string) => Record<string, string>]> = [
        ["X-Vault-Token", (t) => ({ "x-vault-token": t })],
        ["X-Egide-Token", (t) => ({ "x-egide-token": t })],
        ["Authorization: Bearer", (t) => ({ authorization: `Bearer ${t}` })],
        ["Authorization: bearer", (t) => ({ authorization: `bearer ${t}` })],
      ];
      for (const [name, headers] of forms) {
        const write = await call(url, "PUT", "/v1/secret/data/headers/x", { headers: headers(token), body: { data: { by: name } } });
        expect(write.status, name).toBe(200);
        const read = await call(url, "GET", "/v1/secret/data/headers/x", { headers: headers(token) });
        expect(read.status, name).toBe(200);
        expect(read.body.data.data, name).toEqual({ by: name });
        const list = await fetch(`${url}/v1/secret/metadata/headers`, { method: "LIST", headers: headers(token) });
        expect(list.status, name).toBe(200);
        expect(((await list.json()) as { data: unknown }).data, name).toEqual({ keys: ["x"] });
        expect((await call(url, "GET", "/v1/auth/token/lookup-self", { headers: headers(token) })).body.data.policies, name).toEqual([
          "root",
        ]);
        // The same header with a token whose policies do not allow it: 403, not 200.
        const denied = await call(url, "GET", "/v1/secret/data/headers/x", { headers: headers(limitedToken) });
        expect(denied.status, name).toBe(403);
        expect(denied.body, name).toEqual(DENIED);
        expect((await call(url, "GET", "/v1/auth/token/lookup-self", { headers: headers(limitedToken) })).body.data.policies, name).toEqual(
          ["default"],
        );
      }
      await expectAlive();
    });
  });

  it("a burst of 120 hostile requests in parallel leaves the server answering", async () => {
    const hostile: Array<Promise<{ status: number }>> = [];
    for (let i = 0; i < 20; i++) {
      hostile.push(call(url, "PUT", "/v1/secret/data/burst", { token, rawBody: "{bad" }));
      hostile.push(
        call(url, "PUT", "/v1/secret/data/burst", { token, rawBody: JSON.stringify({ data: { v: "z".repeat(MAX_REQUEST_SIZE) } }) }),
      );
      hostile.push(call(url, "GET", "/v1/secret/data/burst", { token: `bad-${i}` }));
      hostile.push(rawHttp(url, rawRequest("FOO", "/v1/x")));
      hostile.push(rawHttp(url, rawRequest("PUT", "/v1/secret/data/a//b", { token, body: '{"data":{}}' })));
      hostile.push(rawHttp(url, Buffer.from("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "latin1"), 1000));
    }
    const statuses = (await Promise.all(hostile)).map((response) => response.status);
    expect(statuses.filter((status) => status >= 500)).toEqual([]);
    await expectAlive();
  }, 20_000);
});
