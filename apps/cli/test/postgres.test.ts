import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import { api, startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";

// A subset of the commands against a server on PostgreSQL (a database of its own, dropped
// afterwards). PostgreSQL missing makes this file fail, never skip.

let server: CliTestServer;
beforeAll(async () => {
  assertBuildIsFresh();
  server = await startCliTestServer({ storage: "postgresql" });
});
afterAll(() => server?.close());

describe("on PostgreSQL", () => {
  test("status reports postgresql storage, healthy", async () => {
    const run = await egide(["status"], { env: server.env });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Storage Type\s+postgresql/);
    expect(run.stdout).toMatch(/Storage Health\s+healthy/);
  });

  test("kv put, patch, get, list and delete", async () => {
    const env = server.env;
    expect((await egide(["kv", "put", "secret/pg/app", "user=u", "pass=p"], { env })).code).toBe(0);
    expect((await egide(["kv", "patch", "-cas=1", "secret/pg/app", "pass=q"], { env })).code).toBe(0);
    expect((await egide(["kv", "get", "-field=pass", "secret/pg/app"], { env })).stdout).toBe("q");
    expect((await egide(["kv", "list", "secret/pg"], { env })).stdout).toBe("Keys\n----\napp\n");
    expect((await egide(["kv", "delete", "secret/pg/app"], { env })).code).toBe(0);
    expect((await api(server, "GET", "secret/data/pg/app")).status).toBe(404);
  });

  test("token create and lookup, policy write and read, audit list", async () => {
    const env = server.env;
    expect(
      (await egide(["policy", "write", "pg-reader", "-"], { env, input: 'path "secret/data/pg/*" { capabilities = ["read"] }' })).code,
    ).toBe(0);
    expect((await egide(["policy", "read", "pg-reader"], { env })).stdout).toContain('path "secret/data/pg/*"');
    const token = (await egide(["token", "create", "--policy", "pg-reader", "--field", "token"], { env })).stdout;
    expect(token).toMatch(/^egs\./);
    const lookup = await egide(["token", "lookup", "--format", "json"], { env: { ...env, EGIDE_TOKEN: token } });
    expect(JSON.parse(lookup.stdout).data.policies).toEqual(["default", "pg-reader"]);
    const audit = await egide(["audit", "list", "--format", "json", "--path", "sys/policies/acl/pg-reader"], { env });
    expect(JSON.parse(audit.stdout).data.entries.map((entry: { operation: string }) => entry.operation)).toEqual(["update", "read"]);
  });

  test("operator seal, then unseal with the key on stdin", async () => {
    expect((await egide(["operator", "seal"], { env: server.env })).code).toBe(0);
    expect((await egide(["status"], { env: server.env })).code).toBe(2);
    const unseal = await egide(["operator", "unseal"], { env: { EGIDE_ADDR: server.url }, input: `${server.keys[0]}\n` });
    expect(unseal.code).toBe(0);
    expect(unseal.stdout).toMatch(/Sealed\s+false/);
    expect((await egide(["status"], { env: server.env })).code).toBe(0);
  });
});
