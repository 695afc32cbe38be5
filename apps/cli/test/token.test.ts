import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import { api, startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";

// `egide token create|lookup|revoke`, checked against the token store through the API.

let server: CliTestServer;
beforeAll(async () => {
  assertBuildIsFresh();
  server = await startCliTestServer();
  await api(server, "PUT", "sys/policies/acl/reader", { policy: 'path "secret/data/*" { capabilities = ["read"] }' });
  await api(server, "PUT", "sys/policies/acl/creator", { policy: 'path "auth/token/create" { capabilities = ["update"] }' });
});
afterAll(() => server?.close());

/** The lookup of `token` through the API, as root (status 403 once revoked). */
const lookup = (token: string) => api(server, "POST", "auth/token/lookup", { token });

describe.concurrent("token create", () => {
  test("prints the new token in a table with its policies and duration; the token works", async () => {
    const run = await egide(["token", "create", "--policy", "reader", "--ttl", "1h", "--display-name", "ci", "--metadata", "team=ops"], {
      env: server.env,
    });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const token = /^token\s+(\S+)$/m.exec(run.stdout)?.[1] as string;
    expect(token).toMatch(/^egs\./);
    expect(run.stdout).toMatch(/^token_policies\s+\[default reader\]$/m);
    expect(run.stdout).toMatch(/^token_duration\s+(59m59s|1h)$/m);
    expect(run.stdout).toMatch(/^orphan\s+false$/m);
    const self = await lookup(token);
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({
      policies: ["default", "reader"],
      display_name: "token-ci",
      meta: { team: "ops" },
      orphan: false,
    });
  });

  test("--field token prints only the token; --orphan, --no-default-policy and --no-renewable reach the server", async () => {
    const run = await egide(
      ["token", "create", "--field", "token", "--policy", "reader", "--orphan", "--no-default-policy", "--no-renewable"],
      { env: server.env },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^egs\.\S+$/);
    const self = await lookup(run.stdout);
    expect(self.body.data).toMatchObject({ policies: ["reader"], orphan: true, renewable: false });
    // Vault's single-dash form works too.
    const vaultStyle = await egide(["token", "create", "-field=token_accessor", "-policy=reader"], { env: server.env });
    expect(vaultStyle.code).toBe(0);
    expect(vaultStyle.stdout).not.toMatch(/^egs\./);
    expect(vaultStyle.stdout.length).toBeGreaterThan(5);
  });

  test("--format json prints the server's answer", async () => {
    const run = await egide(["token", "create", "--format", "json", "--policy", "reader,default"], { env: server.env });
    const body = JSON.parse(run.stdout);
    expect(body.auth.client_token).toMatch(/^egs\./);
    expect([...body.auth.policies].sort()).toEqual(["default", "reader"]);
  });

  test("errors: a policy the caller lacks, a bad ttl, an unknown field, a wrong token", async () => {
    const creator = (await api(server, "POST", "auth/token/create", { policies: ["creator"] })).body.auth.client_token as string;
    const notHeld = await egide(["token", "create", "--policy", "admin"], { env: { ...server.env, EGIDE_TOKEN: creator } });
    expect(notHeld.code).toBe(1);
    expect(notHeld.stderr).toBe("egide: bad request (400): child policies must be subset of parent: admin not held by the caller\n");
    expect(notHeld.stderr).not.toContain(creator);
    // Without create on auth/token/create at all: 403.
    const reader = (await api(server, "POST", "auth/token/create", { policies: ["reader"] })).body.auth.client_token as string;
    const noCreate = await egide(["token", "create"], { env: { ...server.env, EGIDE_TOKEN: reader } });
    expect(noCreate).toEqual({ code: 1, stdout: "", stderr: "egide: permission denied (403)\n" });
    const [ttl, field, wrong] = await Promise.all([
      egide(["token", "create", "--ttl", "soon"], { env: server.env }),
      egide(["token", "create", "--field", "secret"], { env: server.env }),
      egide(["token", "create"], { env: { ...server.env, EGIDE_TOKEN: "egs.wrong" } }),
    ]);
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toContain("option '--ttl <duration>' argument 'soon' is invalid");
    expect(field.code).toBe(2);
    expect(wrong).toEqual({ code: 1, stdout: "", stderr: "egide: permission denied (403)\n" });
  });
});

describe.concurrent("token lookup", () => {
  test("without an argument: the calling token, without printing it", async () => {
    const run = await egide(["token", "lookup"], { env: server.env });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^policies\s+\[root\]$/m);
    expect(run.stdout).toMatch(/^display_name\s+root$/m);
    expect(run.stdout).not.toContain(server.rootToken);
    expect(run.stdout).not.toMatch(/^id\s/m);
    const json = await egide(["token", "lookup", "--format", "json"], { env: server.env });
    const body = JSON.parse(json.stdout);
    expect(body.data.policies).toEqual(["root"]);
    expect(json.stdout).not.toContain(server.rootToken);
  });

  test("with a token (or - for stdin): that token's properties; an unknown token is an error", async () => {
    const child = (await api(server, "POST", "auth/token/create", { policies: ["reader"], ttl: "10m" })).body.auth.client_token as string;
    const run = await egide(["token", "lookup", child], { env: server.env });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^policies\s+\[default reader\]$/m);
    expect(run.stdout).toMatch(/^ttl\s+\d+m\d*s?$/m);
    const stdin = await egide(["token", "lookup", "-"], { env: server.env, input: `${child}\n` });
    expect(stdin.code).toBe(0);
    const accessor = /^accessor\s+(\S+)$/m.exec(run.stdout)?.[1];
    expect(accessor).toBeDefined();
    expect(/^accessor\s+(\S+)$/m.exec(stdin.stdout)?.[1]).toBe(accessor);
    const unknown = await egide(["token", "lookup", "egs.unknown"], { env: server.env });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("egide: permission denied (403): bad token\n");
    expect(unknown.stderr).not.toContain("egs.unknown");
  });
});

describe.concurrent("token revoke", () => {
  test("revoke TOKEN revokes that token (and its children); --self revokes the caller", async () => {
    const parent = (await api(server, "POST", "auth/token/create", { policies: ["creator"] })).body.auth.client_token as string;
    const child = (await api(server, "POST", "auth/token/create", { policies: ["creator"] }, parent)).body.auth.client_token as string;
    const run = await egide(["token", "revoke", parent], { env: server.env });
    expect(run).toEqual({ code: 0, stdout: "Success! Revoked token (if it existed)\n", stderr: "" });
    expect((await lookup(parent)).status).toBe(403);
    expect((await lookup(child)).status).toBe(403);

    const self = (await api(server, "POST", "auth/token/create", { policies: ["default"] })).body.auth.client_token as string;
    const revokeSelf = await egide(["token", "revoke", "--self", "--format", "json"], { env: { ...server.env, EGIDE_TOKEN: self } });
    expect(revokeSelf.code).toBe(0);
    expect(JSON.parse(revokeSelf.stdout)).toEqual({ success: true, revoked: "self" });
    expect((await lookup(self)).status).toBe(403);
    expect((await lookup(server.rootToken)).status).toBe(200);
  });

  test("neither TOKEN nor --self, or both, are usage errors; a wrong caller token revokes nothing", async () => {
    const none = await egide(["token", "revoke"], { env: server.env });
    expect(none).toEqual({ code: 2, stdout: "", stderr: "egide: a TOKEN to revoke, or --self, is required\n" });
    const both = await egide(["token", "revoke", "--self", "egs.x"], { env: server.env });
    expect(both.code).toBe(2);
    const victim = (await api(server, "POST", "auth/token/create", { policies: ["reader"] })).body.auth.client_token as string;
    const wrong = await egide(["token", "revoke", victim], { env: { ...server.env, EGIDE_TOKEN: "egs.wrong" } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe("egide: permission denied (403)\n");
    expect((await lookup(victim)).status).toBe(200);
  });
});
