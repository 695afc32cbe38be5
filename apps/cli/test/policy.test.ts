import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import { api, startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";

// `egide policy write|read|list|delete`, and that a written policy really governs a token.

const READER = 'path "secret/data/shared/*" {\n  capabilities = ["read"]\n}\n';

let server: CliTestServer;
beforeAll(async () => {
  assertBuildIsFresh();
  server = await startCliTestServer();
});
afterAll(() => server?.close());

describe.concurrent("egide policy", () => {
  test("write from a file; the policy then grants exactly what it says", async () => {
    const file = join(server.dir, "reader.hcl");
    writeFileSync(file, READER);
    const run = await egide(["policy", "write", "reader", file], { env: server.env });
    expect(run).toEqual({ code: 0, stdout: "Success! Uploaded policy: reader\n", stderr: "" });
    expect((await api(server, "GET", "sys/policies/acl/reader")).body.data.policy).toBe(READER);

    await api(server, "POST", "secret/data/shared/db", { data: { pw: "x" } });
    const token = (await api(server, "POST", "auth/token/create", { policies: ["reader"] })).body.auth.client_token as string;
    const allowed = await egide(["kv", "get", "--field", "pw", "secret/shared/db"], { env: { ...server.env, EGIDE_TOKEN: token } });
    expect(allowed.stdout).toBe("x");
    const denied = await egide(["kv", "put", "secret/shared/db", "pw=y"], { env: { ...server.env, EGIDE_TOKEN: token } });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toBe("egide: permission denied (403)\n");
  });

  test("write from stdin (-), read prints the text, json prints the server's answer", async () => {
    const write = await egide(["policy", "write", "--format", "json", "piped", "-"], {
      env: server.env,
      input: 'path "secret/data/p" { capabilities = ["list"] }',
    });
    expect(write.code).toBe(0);
    expect(JSON.parse(write.stdout)).toEqual({ success: true, name: "piped" });
    const read = await egide(["policy", "read", "piped"], { env: server.env });
    expect(read).toEqual({ code: 0, stdout: 'path "secret/data/p" { capabilities = ["list"] }\n', stderr: "" });
    const json = await egide(["policy", "read", "piped", "--format", "json"], { env: server.env });
    expect(JSON.parse(json.stdout).data).toEqual({ name: "piped", policy: 'path "secret/data/p" { capabilities = ["list"] }' });
  });

  test("list shows every policy, root last; delete removes one", async () => {
    await api(server, "PUT", "sys/policies/acl/doomed", { policy: READER });
    const list = await egide(["policy", "list"], { env: server.env });
    expect(list.code).toBe(0);
    const names = list.stdout.trimEnd().split("\n");
    expect(names).toEqual(expect.arrayContaining(["default", "doomed", "root"]));
    expect(names.at(-1)).toBe("root");
    const del = await egide(["policy", "delete", "doomed"], { env: server.env });
    expect(del).toEqual({ code: 0, stdout: "Success! Deleted policy: doomed\n", stderr: "" });
    expect((await api(server, "GET", "sys/policies/acl/doomed")).status).toBe(404);
    const json = await egide(["policy", "list", "--format", "json"], { env: server.env });
    expect(JSON.parse(json.stdout).data.keys).not.toContain("doomed");
  });

  test("errors: a bad policy, a missing file, an unknown policy, root, a wrong token, missing arguments", async () => {
    const [bad, missing, unknown, root, wrong, args] = await Promise.all([
      egide(["policy", "write", "broken", "-"], { env: server.env, input: 'path "x" { capabilities = [' }),
      egide(["policy", "write", "x", join(server.dir, "nope.hcl")], { env: server.env }),
      egide(["policy", "read", "nope"], { env: server.env }),
      egide(["policy", "delete", "root"], { env: server.env }),
      egide(["policy", "list"], { env: { ...server.env, EGIDE_TOKEN: "egs.wrong" } }),
      egide(["policy", "write", "only-name"], { env: server.env }),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^egide: bad request \(400\): .+\n$/);
    expect((await api(server, "GET", "sys/policies/acl/broken")).status).toBe(404);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no such file");
    expect(unknown).toEqual({ code: 2, stdout: "", stderr: 'egide: no policy named "nope"\n' });
    expect(root.code).toBe(1);
    expect(root.stderr).toMatch(/^egide: bad request \(400\): /);
    expect(wrong).toEqual({ code: 1, stdout: "", stderr: "egide: permission denied (403)\n" });
    expect(args.code).toBe(2);
    expect(args.stderr).toContain("missing required argument 'file'");
  });
});
