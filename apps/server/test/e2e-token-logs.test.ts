/**
 * No token text in the server's logs or audit rows: the built server (dist/bin/egide-server.js)
 * runs as a child process with log_level = "info" over SQLite, its stdout and stderr captured,
 * while every token endpoint is exercised (tokens in headers and in bodies, good and bad ones).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { call } from "@egide/test-server";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";

let server: ServerProcess | undefined;
let url = "";

beforeAll(async () => {
  server = await startServerProcess("token-logs");
  url = server.url;
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

it("every token endpoint, and no token text in the logs or the audit log", async () => {
  const secrets: string[] = [];
  const init = await call(url, "PUT", "/v1/sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
  expect(init.status).toBe(200);
  const root: string = init.body.root_token;
  secrets.push(root);
  expect((await call(url, "PUT", "/v1/sys/unseal", { body: { key: init.body.keys[0] } })).status).toBe(200);
  const as = (token: string) => (method: string, path: string, body?: unknown) =>
    call(url, method, `/v1/${path}`, { token, ...(body === undefined ? {} : { body }) });
  const r = as(root);
  const created = async (path: string, body: unknown) => {
    const reply = await r("POST", path, body);
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    secrets.push(reply.body.auth.client_token);
    return reply.body.auth as { client_token: string; accessor: string };
  };
  const a = await created("auth/token/create", { ttl: "1h", num_uses: 3 });
  const b = await created("auth/token/create-orphan", { ttl: "1h" });
  expect((await r("POST", "auth/token/roles/logs", { allowed_policies: "default" })).status).toBe(204);
  const c = await created("auth/token/create/logs", { period: "1h" });
  const d = await created("auth/token/create", { ttl: "1h" });
  const unknown = `egs.${"Z".repeat(43)}`;
  secrets.push(unknown);
  expect((await r("POST", "auth/token/lookup", { token: a.client_token })).status).toBe(200);
  expect((await r("POST", "auth/token/lookup", { token: unknown })).status).toBe(403);
  expect((await as(a.client_token)("GET", "auth/token/lookup-self")).status).toBe(200);
  expect((await r("POST", "auth/token/lookup-accessor", { accessor: b.accessor })).status).toBe(200);
  expect((await r("POST", "auth/token/renew", { token: b.client_token })).status).toBe(200);
  expect((await r("POST", "auth/token/renew", { token: unknown })).status).toBe(400);
  expect((await as(c.client_token)("POST", "auth/token/renew-self", {})).status).toBe(200);
  expect((await r("POST", "auth/token/renew-accessor", { accessor: d.accessor })).status).toBe(200);
  expect((await as(unknown)("GET", "auth/token/lookup-self")).status).toBe(403);
  expect((await r("POST", "auth/token/revoke-orphan", { token: unknown })).status).toBe(400);
  expect((await r("POST", "auth/token/revoke-orphan", { token: b.client_token })).status).toBe(204);
  expect((await r("POST", "auth/token/revoke", { token: c.client_token })).status).toBe(204);
  expect((await as(d.client_token)("POST", "auth/token/revoke-self")).status).toBe(204);
  expect((await r("LIST", "auth/token/accessors")).status).toBe(200);
  expect((await r("POST", "auth/token/tidy")).status).toBe(202);
  // the use-limited token's second and third (last) uses, then refused
  expect((await as(a.client_token)("GET", "auth/token/lookup-self")).status).toBe(200);
  expect((await as(a.client_token)("GET", "auth/token/lookup-self")).status).toBe(200);
  expect((await as(a.client_token)("GET", "auth/token/lookup-self")).status).toBe(403);

  const audit = await r("GET", "sys/audit-log?limit=10000");
  expect(audit.status).toBe(200);
  expect(audit.body.data.entries.length).toBeGreaterThan(20);
  const auditText = JSON.stringify(audit.body);
  // give the logger a moment to flush, then stop the server so that everything is written
  await new Promise((resolve) => setTimeout(resolve, 300));
  await server?.stop();
  expect(server?.output() ?? "").toContain("auth/token");
  for (const secret of secrets) {
    const random = secret.slice(4);
    expect((server?.output() ?? "").includes(random), "a token appears in the server's logs").toBe(false);
    expect(auditText.includes(random), "a token appears in the audit log").toBe(false);
  }
}, 60_000);
