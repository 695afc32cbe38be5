import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, rawHttp, startTestServer, type TestServer } from "@egide/test-server";
import { CAS_MISMATCH } from "../src/kv/kv-v2-engine.js";

// Places where a Vault client library found Egide answering differently from Vault's documented
// API, each as Vault answers it, over SQLite and PostgreSQL: check-and-set conflicts (400),
// the `list` query parameter (Go's strconv.ParseBool), and sys/capabilities*.

type Reply = Awaited<ReturnType<typeof call>>;

const GO_TRUE = ["1", "t", "T", "TRUE", "true", "True"];
const GO_FALSE = ["0", "f", "F", "FALSE", "false", "False"];
const NOT_BOOLEAN = ["yes", "2", "tru", "TRUe", " true", "true ", "on", "%00", "truee", "-1", "0x1", "%E2%80%8Btrue"];

for (const storage of ["sqlite", "postgresql"] as const) {
  describe(`Vault parity over ${storage}`, () => {
    let ts: TestServer;
    const req = (method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<Reply> =>
      call(ts.url, method, path, { token: options.token ?? ts.rootToken, ...(options.body === undefined ? {} : { body: options.body }) });
    const tokenWith = async (policies: string[]): Promise<{ token: string; accessor: string }> => {
      const reply = await req("POST", "/v1/auth/token/create", { body: { policies } });
      expect(reply.status, JSON.stringify(reply.body)).toBe(200);
      return { token: reply.body.auth.client_token, accessor: reply.body.auth.accessor };
    };

    beforeAll(async () => {
      ts = await startTestServer({ storage, label: `parity-${storage}` });
      for (const key of ["app/a", "app/b", "app/sub/c"]) {
        expect((await req("POST", `/v1/secret/data/${key}`, { body: { data: { v: key } } })).status).toBe(200);
      }
      const policy = `path "secret/data/app/*" { capabilities = ["read", "update"] }
path "secret/metadata/app/*" { capabilities = ["list"] }
path "secret/data/app/denied" { capabilities = ["deny"] }
path "sys/policies/acl/*" { capabilities = ["read", "list", "sudo"] }`;
      expect((await req("PUT", "/v1/sys/policies/acl/parity", { body: { policy } })).status).toBe(204);
    }, 60_000);

    afterAll(async () => {
      await ts?.close();
    });

    describe("check-and-set conflicts answer 400 with Vault's message, as Vault does", () => {
      it("a stale cas, and cas=0 on an existing secret, are 400 and write nothing", async () => {
        expect((await req("POST", "/v1/secret/data/cas/x", { body: { data: { v: 1 }, options: { cas: 0 } } })).status).toBe(200);
        for (const cas of [0, 2, 5]) {
          const reply = await req("POST", "/v1/secret/data/cas/x", { body: { data: { v: 2 }, options: { cas } } });
          expect({ status: reply.status, body: reply.body }, `cas ${cas}`).toEqual({ status: 400, body: { errors: [CAS_MISMATCH] } });
          const patch = await call(ts.url, "PATCH", "/v1/secret/data/cas/x", {
            token: ts.rootToken,
            body: { data: { v: 3 }, options: { cas } },
            headers: { "content-type": "application/merge-patch+json" },
          });
          expect({ status: patch.status, body: patch.body }, `patch cas ${cas}`).toEqual({ status: 400, body: { errors: [CAS_MISMATCH] } });
        }
        const read = await req("GET", "/v1/secret/data/cas/x");
        expect(read.body.data).toMatchObject({ data: { v: 1 }, metadata: { version: 1 } });
      });
    });

    describe("the list query parameter is parsed as Go's strconv.ParseBool", () => {
      // One route of each family that lists: KV v2 metadata, policies, mounts' keys.
      const LISTS = [
        { path: "/v1/secret/metadata/app", keys: ["a", "b", "sub/"] },
        { path: "/v1/sys/policies/acl", contains: "parity" },
      ];

      it("each of Go's true spellings is a list request", async () => {
        for (const value of GO_TRUE) {
          for (const target of LISTS) {
            const reply = await req("GET", `${target.path}?list=${value}`);
            expect(reply.status, `${target.path}?list=${value}`).toBe(200);
            if (target.keys) expect(reply.body.data.keys).toEqual(target.keys);
            else expect(reply.body.data.keys).toContain(target.contains);
          }
        }
      });

      it("each of Go's false spellings, and an empty value, is a read", async () => {
        for (const value of [...GO_FALSE, ""]) {
          // A read of the folder: no secret there (404); a read of the policy list path is a
          // different route answer than a list: 405 or 404, never the list's keys.
          const folder = await req("GET", `/v1/secret/metadata/app?list=${value}`);
          expect(folder.status, `list=${value}`).toBe(404);
          const secret = await req("GET", `/v1/secret/data/app/a?list=${value}`);
          expect(secret.status, `list=${value}`).toBe(200);
          expect(secret.body.data.data).toEqual({ v: "app/a" });
        }
      });

      it("a value ParseBool refuses is 400, before authentication, on every route family, and reaches no handler", async () => {
        for (const value of NOT_BOOLEAN) {
          for (const path of [
            "/v1/secret/metadata/app",
            "/v1/secret/data/app/a",
            "/v1/sys/policies/acl",
            "/v1/sys/mounts",
            "/v1/auth/token/lookup-self",
          ]) {
            const withToken = await req("GET", `${path}?list=${value.replaceAll(" ", "%20")}`);
            expect(withToken.status, `${path}?list=${value}`).toBe(400);
            const anonymous = await rawHttp(
              ts.url,
              `GET ${path}?list=${value.replaceAll(" ", "%20")} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
            );
            expect(anonymous.status, `anonymous ${path}?list=${value}`).toBe(400);
          }
        }
      });

      it("only the first list value counts, as Vault's Query().Get", async () => {
        expect((await req("GET", "/v1/secret/metadata/app?list=true&list=false")).status).toBe(200);
        expect((await req("GET", "/v1/secret/metadata/app?list=false&list=true")).status).toBe(404);
        expect((await req("GET", "/v1/secret/metadata/app?list=yes&list=true")).status).toBe(400);
      });

      it("a list by ParseBool spelling is authorised as a list, and a read spelling as a read", async () => {
        const { token } = await tokenWith(["parity"]);
        // list on secret/metadata/app/* does not cover the folder itself (secret/metadata/app/)... it does:
        // Vault checks list on "secret/metadata/app/", which "secret/metadata/app/*" matches.
        expect((await req("GET", "/v1/secret/metadata/app?list=T", { token })).status).toBe(200);
        // A read of metadata is not granted: the read spelling must be checked as a read.
        expect((await req("GET", "/v1/secret/metadata/app/a?list=F", { token })).status).toBe(403);
        expect((await req("GET", "/v1/secret/data/app/a?list=0", { token })).status).toBe(200);
        // And a list spelling on a data path is checked as a list there (not granted).
        expect((await req("GET", "/v1/secret/data/app/a?list=1", { token })).status).toBe(403);
      });
    });

    describe("sys/capabilities, capabilities-self and capabilities-accessor", () => {
      it("answers Vault's documented shape: per path, and under capabilities for one path, in data and at the top level", async () => {
        const { token } = await tokenWith(["parity"]);
        const reply = await req("POST", "/v1/sys/capabilities", { body: { token, paths: ["secret/data/app/a"] } });
        expect(reply.status, JSON.stringify(reply.body)).toBe(200);
        expect(reply.body.data).toEqual({ capabilities: ["read", "update"], "secret/data/app/a": ["read", "update"] });
        expect(reply.body.capabilities).toEqual(["read", "update"]);
        expect(reply.body["secret/data/app/a"]).toEqual(["read", "update"]);
        expect(typeof reply.body.request_id).toBe("string");
      });

      it("several paths: sorted capabilities per path, deny where nothing or a deny rule applies, no legacy field", async () => {
        const { token, accessor } = await tokenWith(["parity"]);
        const paths = ["secret/data/app/a", "secret/data/app/denied", "secret/data/other", "sys/policies/acl/x", "__proto__"];
        const expected = {
          "secret/data/app/a": ["read", "update"],
          "secret/data/app/denied": ["deny"],
          "secret/data/other": ["deny"],
          "sys/policies/acl/x": ["list", "read", "sudo"],
          ["__proto__"]: ["deny"],
        };
        const byToken = await req("POST", "/v1/sys/capabilities", { body: { token, paths } });
        expect(byToken.status).toBe(200);
        expect(byToken.body.data).toEqual(expected);
        const byAccessor = await req("POST", "/v1/sys/capabilities-accessor", { body: { accessor, paths } });
        expect(byAccessor.status).toBe(200);
        expect(byAccessor.body.data).toEqual(expected);
        const self = await req("POST", "/v1/sys/capabilities-self", { token, body: { paths: paths.join(",") } });
        expect(self.status, JSON.stringify(self.body)).toBe(200);
        expect(self.body.data).toEqual(expected);
      });

      it("a root token has root; the deprecated path field works; a comma-separated string is a list", async () => {
        const reply = await req("POST", "/v1/sys/capabilities-self", { body: { path: "secret/data/a" } });
        expect(reply.body.data).toEqual({ capabilities: ["root"], "secret/data/a": ["root"] });
        const root = await req("POST", "/v1/sys/capabilities", { body: { token: ts.rootToken, paths: "a, b" } });
        expect(root.body.data).toEqual({ a: ["root"], b: ["root"] });
      });

      it("refuses missing paths, a missing or unknown token or accessor, and too many paths, with 400", async () => {
        const { token } = await tokenWith(["parity"]);
        const cases: Array<[string, unknown, string]> = [
          ["/v1/sys/capabilities", { token }, "paths must be supplied"],
          ["/v1/sys/capabilities", { paths: ["a"] }, "missing token"],
          ["/v1/sys/capabilities", { token: "egs.not-a-token", paths: ["a"] }, "invalid token"],
          ["/v1/sys/capabilities-accessor", { paths: ["a"] }, "accessor not provided"],
          ["/v1/sys/capabilities-accessor", { accessor: "nope", paths: ["a"] }, "invalid accessor"],
          ["/v1/sys/capabilities-self", { paths: [1] }, "paths must be a list of strings"],
          [
            "/v1/sys/capabilities-self",
            { paths: Array.from({ length: 257 }, (_, i) => `p${i}`) },
            "at most 256 paths may be asked at once",
          ],
        ];
        for (const [path, body, message] of cases) {
          const reply = await req("POST", path, { body });
          expect({ status: reply.status, errors: reply.body.errors }, `${path} ${JSON.stringify(body).slice(0, 60)}`).toEqual({
            status: 400,
            errors: [message],
          });
        }
      });

      it("needs update on its path: the default policy grants capabilities-self only", async () => {
        const { token } = await tokenWith(["default"]);
        expect((await req("POST", "/v1/sys/capabilities-self", { token, body: { paths: ["x"] } })).status).toBe(200);
        expect((await req("POST", "/v1/sys/capabilities", { token, body: { token, paths: ["x"] } })).status).toBe(403);
        expect((await req("POST", "/v1/sys/capabilities-accessor", { token, body: { accessor: "a", paths: ["x"] } })).status).toBe(403);
        expect((await call(ts.url, "POST", "/v1/sys/capabilities-self", { body: { paths: ["x"] } })).status).toBe(403);
      });
    });
  });
}
