import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServerProcess } from "./support/server-process.js";
import { call, startTestServer, type TestServer } from "@egide/test-server";
import { databaseBytes, decryptedStorageText } from "./support/stored-bytes.js";

// userpass end to end over SQLite and PostgreSQL, real HTTP: Vault's shapes per endpoint,
// login → token with the user's policies, scrypt hashes only (the password nowhere in the
// database, the decrypted storage, the audit rows or the server's logs), one scrypt per
// attempt whether or not the user exists, and a bounded number of hashes at once.

type Reply = Awaited<ReturnType<typeof call>>;

async function hashesComputed(ts: TestServer): Promise<number> {
  const reply = await call(ts.url, "GET", "/v1/sys/metrics?format=prometheus", { token: ts.rootToken });
  const match = /^egide_auth_password_hashes_total (\d+)/m.exec(String(reply.body));
  return match ? Number(match[1]) : 0;
}

describe.each([["sqlite"], ["postgresql"]] as const)("userpass over %s", { timeout: 30_000 }, (storage) => {
  let ts: TestServer;
  const passwords = new Set<string>();
  const req = (method: string, path: string, token?: string, body?: unknown): Promise<Reply> =>
    call(ts.url, method, path, { ...(token === undefined ? {} : { token }), ...(body === undefined ? {} : { body }) });
  const root = (method: string, path: string, body?: unknown) => req(method, path, ts.rootToken, body);
  const login = (user: string, password: unknown) => req("POST", `/v1/auth/userpass/login/${user}`, undefined, { password });

  beforeAll(async () => {
    ts = await startTestServer({ storage, label: "userpass" });
    expect((await root("POST", "/v1/sys/auth/userpass", { type: "userpass" })).status).toBe(204);
    expect((await root("PUT", "/v1/sys/policies/acl/dev", { policy: `path "secret/data/dev/*" { capabilities = ["read"] }` })).status).toBe(
      204,
    );
    expect((await root("POST", "/v1/secret/data/dev/app", { data: { key: "dev-value" } })).status).toBe(200);
    for (const p of ["Tr0ub4dor&3-alice", "n3w-alice-passphrase", "bob-Pa55word!"]) passwords.add(p);
  }, 60_000);
  afterAll(async () => {
    await ts?.close();
  }, 60_000);

  it("creates, reads, lists, updates and deletes users with Vault's shapes", async () => {
    expect(
      (await root("POST", "/v1/auth/userpass/users/alice", { password: "Tr0ub4dor&3-alice", token_policies: "dev", token_ttl: "30m" }))
        .status,
    ).toBe(204);
    const read = await root("GET", "/v1/auth/userpass/users/alice");
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual({
      token_bound_cidrs: [],
      token_explicit_max_ttl: 0,
      token_max_ttl: 0,
      token_no_default_policy: false,
      token_num_uses: 0,
      token_period: 0,
      token_policies: ["dev"],
      token_ttl: 1800,
      token_type: "default",
    });
    expect((await root("POST", "/v1/auth/userpass/users/bob", { password: "bob-Pa55word!", policies: ["dev"] })).status).toBe(204);
    expect((await root("LIST", "/v1/auth/userpass/users")).body.data.keys).toEqual(["alice", "bob"]);
    expect((await root("POST", "/v1/auth/userpass/users/bob/policies", { token_policies: "dev,other" })).status).toBe(204);
    expect((await root("GET", "/v1/auth/userpass/users/bob")).body.data.token_policies).toEqual(["dev", "other"]);
    // a user's settings change without a password; creating one needs it
    expect((await root("POST", "/v1/auth/userpass/users/bob", { token_ttl: 60 })).status).toBe(204);
    expect((await root("GET", "/v1/auth/userpass/users/bob")).body.data.token_ttl).toBe(60);
    expect((await root("POST", "/v1/auth/userpass/users/carol", { token_policies: "dev" })).body.errors).toEqual(["missing password"]);
    expect((await root("GET", "/v1/auth/userpass/users/carol")).status).toBe(404);
    expect((await root("POST", "/v1/auth/userpass/users/carol/password", { password: "x" })).body.errors).toEqual([
      "username does not exist",
    ]);
    expect((await root("POST", "/v1/auth/userpass/users/alice/password", {})).body.errors).toEqual(["missing password"]);
    expect((await root("POST", "/v1/auth/userpass/users/dave", { password: "p".repeat(1025) })).body.errors).toEqual([
      "password is longer than 1024 bytes",
    ]);
    expect((await root("POST", "/v1/auth/userpass/users/dave", { password: "pw", token_bound_cidrs: "10.0.0.0/8" })).status).toBe(400);
    // the path the ACL checked is the path acted on: an upper-case name is no userpass path
    expect((await root("POST", "/v1/auth/userpass/users/Dave", { password: "pw" })).status).toBe(404);
    expect((await root("DELETE", "/v1/auth/userpass/users/bob")).status).toBe(204);
    expect((await root("LIST", "/v1/auth/userpass/users")).body.data.keys).toEqual(["alice"]);
  });

  it("logs in with the password and the token has exactly the user's policies", async () => {
    const reply = await login("alice", "Tr0ub4dor&3-alice");
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    const auth = reply.body.auth;
    expect(auth.policies).toEqual(["default", "dev"]);
    expect(auth.metadata).toEqual({ username: "alice" });
    expect(auth.lease_duration).toBeGreaterThan(1790);
    expect(auth.lease_duration).toBeLessThanOrEqual(1800);
    expect((await req("GET", "/v1/secret/data/dev/app", auth.client_token)).body.data.data).toEqual({ key: "dev-value" });
    const self = await req("GET", "/v1/auth/token/lookup-self", auth.client_token);
    expect(self.body.data.display_name).toBe("userpass-alice");
    // usernames are case-insensitive at login, as in Vault
    expect((await login("ALICE", "Tr0ub4dor&3-alice")).status).toBe(200);
    // a new password replaces the old one
    expect((await root("POST", "/v1/auth/userpass/users/alice/password", { password: "n3w-alice-passphrase" })).status).toBe(204);
    expect((await login("alice", "Tr0ub4dor&3-alice")).status).toBe(400);
    expect((await login("alice", "n3w-alice-passphrase")).status).toBe(200);
  });

  it("answers every failure the same way, and spends one scrypt on an unknown user too", async () => {
    const invalid = ["invalid username or password"];
    expect((await login("alice", "wrong")).body.errors).toEqual(invalid);
    const before = await hashesComputed(ts);
    const unknown = await login("nobody", "whatever");
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toEqual(invalid);
    expect(await hashesComputed(ts)).toBe(before + 1);
    expect((await login("alice", "")).body.errors).toEqual(["missing password"]);
    expect((await login("alice", 12)).status).toBe(400);
    expect((await login("alice", "p".repeat(1025))).body.errors).toEqual(["password is longer than 1024 bytes"]);
    // bounded before hashing: no scrypt was spent on these
    expect(await hashesComputed(ts)).toBe(before + 1);
  });

  it("runs at most a few hashes at once and refuses the excess quickly with 429", async () => {
    // Names that do not exist (each costs a hash against a dummy one), so that no name is
    // locked out (see the lockout test) and every attempt reaches the limiter.
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => login(`nobody-${i}`, "wrong-password")));
    const statuses = replies.map((r) => r.status);
    expect(statuses.every((s) => s === 400 || s === 429)).toBe(true);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    const refused = replies.find((r) => r.status === 429) as Reply;
    expect(refused.body.errors).toEqual(["too many password checks in progress; try again later"]);
    // and the server is fine afterwards
    expect((await login("alice", "n3w-alice-passphrase")).status).toBe(200);
  }, 60_000);

  it("locks a name out after 5 failed logins (Vault's user lockout): then even the right password is refused, with no hash", async () => {
    expect((await root("POST", "/v1/auth/userpass/users/locked-out", { password: "locked-out-passphrase" })).status).toBe(204);
    for (let i = 0; i < 5; i++) {
      passwords.add(`wrong-${i}`);
      expect((await login("locked-out", `wrong-${i}`)).status).toBe(400);
    }
    passwords.add("locked-out-passphrase");
    const hashesBefore = await hashesComputed(ts);
    const refused = await login("locked-out", "locked-out-passphrase");
    expect({ status: refused.status, body: refused.body }).toEqual({ status: 403, body: { errors: ["permission denied"] } });
    expect(await hashesComputed(ts)).toBe(hashesBefore);
    // Another name is not affected, and neither is a name that does not exist yet failing.
    expect((await login("alice", "n3w-alice-passphrase")).status).toBe(200);
  });

  it("audits failed logins without the password, and stores no password anywhere", async () => {
    expect((await login("alice", "Tr0ub4dor&3-alice")).status).toBe(400);
    const audit = await root("GET", "/v1/sys/audit-log?path_prefix=auth/userpass/login/alice&limit=1000");
    const rows = audit.body.data.entries as Array<{ success: boolean; error_message: string | null }>;
    expect(rows.some((r) => !r.success && r.error_message === "invalid username or password")).toBe(true);
    expect(rows.some((r) => r.success)).toBe(true);
    const allAudit = JSON.stringify((await root("GET", "/v1/sys/audit-log?limit=1000")).body);
    const plain = await decryptedStorageText(ts);
    expect(plain).toContain('"N":32768');
    const raw = await databaseBytes(ts, storage);
    for (const password of passwords) {
      expect(allAudit.includes(password), "audit log").toBe(false);
      expect(plain.includes(password), "decrypted storage").toBe(false);
      expect(raw.includes(Buffer.from(password)), "database bytes").toBe(false);
    }
  });
});

// --- the server's own logs: a child process at log_level "info" ------------------------------

describe("credentials in the server's logs (child process, log_level trace)", () => {
  it("logs no password and no secret id, whether the login succeeds or fails", async () => {
    const server = await startServerProcess("auth-logs", "trace");
    try {
      const url = server.url;
      const init = await call(url, "PUT", "/v1/sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
      expect(init.status).toBe(200);
      const token = init.body.root_token as string;
      expect((await call(url, "PUT", "/v1/sys/unseal", { body: { key: init.body.keys[0] } })).status).toBe(200);
      const root = (method: string, path: string, body?: unknown) =>
        call(url, method, path, { token, ...(body === undefined ? {} : { body }) });
      const password = "log-canary-password-7f3a";
      expect((await root("POST", "/v1/sys/auth/userpass", { type: "userpass" })).status).toBe(204);
      expect((await root("POST", "/v1/sys/auth/approle", { type: "approle" })).status).toBe(204);
      expect((await root("POST", "/v1/auth/userpass/users/carol", { password })).status).toBe(204);
      expect((await call(url, "POST", "/v1/auth/userpass/login/carol", { body: { password } })).status).toBe(200);
      expect((await call(url, "POST", "/v1/auth/userpass/login/carol", { body: { password: `${password}-wrong` } })).status).toBe(400);
      expect((await root("POST", "/v1/auth/approle/role/svc", { token_policies: "default" })).status).toBe(204);
      const roleId = (await root("GET", "/v1/auth/approle/role/svc/role-id")).body.data.role_id as string;
      const secretId = (await root("POST", "/v1/auth/approle/role/svc/secret-id", {})).body.data.secret_id as string;
      expect((await call(url, "POST", "/v1/auth/approle/login", { body: { role_id: roleId, secret_id: secretId } })).status).toBe(200);
      const wrongSecret = "log-canary-secret-id-9b1c";
      expect((await call(url, "POST", "/v1/auth/approle/login", { body: { role_id: roleId, secret_id: wrongSecret } })).status).toBe(400);
      await server.stop();
      const out = server.output();
      // the capture works: the logger wrote the login requests
      expect(out).toContain("auth/approle/login");
      for (const secret of [password, secretId, wrongSecret]) expect(out.includes(secret), "server logs").toBe(false);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
