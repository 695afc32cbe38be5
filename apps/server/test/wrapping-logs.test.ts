/**
 * No wrapping token and no wrapped secret in the server's logs or audit rows: the built server
 * (dist/bin/egide-server.js) runs as a child process with log_level = "info" over SQLite, its
 * stdout and stderr captured, while every wrapping path is exercised (wrapped reads, writes and
 * token creations, unwraps with the token in the header and in the body, lookups, rewraps, and
 * refused attempts).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { call } from "@egide/test-server";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";

let server: ServerProcess | undefined;
let url = "";

beforeAll(async () => {
  server = await startServerProcess("wrapping-logs");
  url = server.url;
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

it("every wrapping path, and no wrapping token or wrapped secret in the logs or the audit log", async () => {
  const secrets: string[] = [];
  const init = await call(url, "PUT", "/v1/sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
  expect(init.status).toBe(200);
  const root: string = init.body.root_token;
  expect((await call(url, "PUT", "/v1/sys/unseal", { body: { key: init.body.keys[0] } })).status).toBe(200);
  const as =
    (token: string | undefined, wrap?: string) =>
    (method: string, path: string, body?: unknown): ReturnType<typeof call> =>
      call(url, method, `/v1/${path}`, {
        ...(token === undefined ? {} : { token }),
        ...(body === undefined ? {} : { body }),
        ...(wrap === undefined ? {} : { headers: { "x-vault-wrap-ttl": wrap } }),
      });
  const r = as(root);
  const wrapped = async (reply: Awaited<ReturnType<typeof call>>) => {
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    const token = reply.body.wrap_info.token as string;
    secrets.push(token);
    return token;
  };

  const secretValue = "wrapped-secret-7f3a9c1e5b2d4086";
  const wrapValue = "wrap-endpoint-value-c0ffee4242";
  secrets.push(secretValue, wrapValue);
  expect((await r("POST", "secret/data/logs/db", { data: { password: secretValue } })).status).toBe(200);

  // A wrapped read, unwrapped with the wrapping token as the request's token; then refused.
  const read = await wrapped(await as(root, "5m")("GET", "secret/data/logs/db"));
  expect((await as(read)("POST", "sys/wrapping/unwrap")).body.data.data.password).toBe(secretValue);
  expect((await as(read)("POST", "sys/wrapping/unwrap")).status).toBe(400);
  // A wrapped write (its answer holds no secret, but is wrapped all the same).
  await wrapped(await as(root, "5m")("POST", "secret/data/logs/other", { data: { password: secretValue } }));
  // sys/wrapping/wrap, looked up, rewrapped, unwrapped by a third party; refused afterwards.
  const value = await wrapped(await as(root, "1h")("POST", "sys/wrapping/wrap", { value: wrapValue }));
  expect((await as(undefined)("POST", "sys/wrapping/lookup", { token: value })).status).toBe(200);
  const rewrapped = await wrapped(await r("POST", "sys/wrapping/rewrap", { token: value }));
  expect((await r("POST", "sys/wrapping/rewrap", { token: value })).status).toBe(400);
  expect((await r("POST", "sys/wrapping/unwrap", { token: rewrapped })).body.data.value).toBe(wrapValue);
  expect((await r("POST", "sys/wrapping/unwrap", { token: rewrapped })).status).toBe(400);
  // A wrapped token creation; the token inside is a secret too.
  const created = await wrapped(await as(root, "5m")("POST", "auth/token/create", { policies: ["default"], ttl: "1h" }));
  const unwrappedToken = await r("POST", "sys/wrapping/unwrap", { token: created });
  expect(unwrappedToken.status).toBe(200);
  secrets.push(unwrappedToken.body.auth.client_token);
  // A wrapping token used where it may not be (spent there), and bad wrap TTLs.
  const misused = await wrapped(await as(root, "5m")("GET", "secret/data/logs/db"));
  expect((await as(misused)("GET", "secret/data/logs/db")).status).toBe(403);
  expect((await as(misused)("POST", "sys/wrapping/unwrap")).status).toBe(400);
  expect((await as(root, "-5m")("GET", "secret/data/logs/db")).status).toBe(400);
  expect((await as(root, "nonsense")("GET", "secret/data/logs/db")).status).toBe(400);

  const audit = await r("GET", "sys/audit-log?limit=10000");
  expect(audit.status).toBe(200);
  const entries = audit.body.data.entries as Array<{ path: string }>;
  expect(entries.filter((entry) => entry.path === "sys/wrapping/unwrap").length).toBeGreaterThanOrEqual(6);
  expect(entries.some((entry) => entry.path === "secret/data/logs/db")).toBe(true);
  const auditText = JSON.stringify(audit.body);
  // give the logger a moment to flush, then stop the server so that everything is written
  await new Promise((resolve) => setTimeout(resolve, 300));
  await server?.stop();
  expect(server?.output() ?? "").toContain("sys/wrapping/unwrap");
  for (const secret of secrets) {
    const text = secret.startsWith("egs.") ? secret.slice(4) : secret;
    expect((server?.output() ?? "").includes(text), "a wrapping token or wrapped secret appears in the server's logs").toBe(false);
    expect(auditText.includes(text), "a wrapping token or wrapped secret appears in the audit log").toBe(false);
  }
}, 60_000);
