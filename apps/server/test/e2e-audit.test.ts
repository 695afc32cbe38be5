import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { quoteIdentifier, withClient } from "@egide/test-postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startTestServer, type TestServer } from "@egide/test-server";

// The audit log end to end, over SQLite and PostgreSQL: a varied sequence of real HTTP
// requests, then the audit table read directly (better-sqlite3 read-only, pg) and through
// GET /v1/sys/audit-log. Exactly one row per request, the accessor (never the token) as
// user_id, and no secret value or token text anywhere: not in the audit table, not in the
// storage (which is encrypted), not in the server's logs. The SQLite server runs as a child
// process (dist/bin/egide-server.js, log_level = "info") so that its stdout and stderr, where
// the logger writes, can be captured. Audit failures are injected for real with a trigger that
// makes every insert into egide_audit_log fail.

type Reply = Awaited<ReturnType<typeof call>>;

/** One request sent, and the audit row it must have produced. */
interface Sent {
  method: string;
  url: string;
  status: number;
  /** The response's request_id, when the body had one. */
  requestId: string | undefined;
  operation: string;
  path: string;
  /** The accessor expected in user_id (null: no authenticated caller). */
  user: string | null;
  /** Whether a row must exist (false while the audit log is made to fail). */
  audited: boolean;
  sentAt: number;
}

/** An audit row, normalised across SQLite and PostgreSQL. */
interface Row {
  id: number;
  timestamp: number;
  operation: string;
  path: string;
  source_ip: string | null;
  user_id: string | null;
  request_id: string | null;
  success: boolean;
  error_message: string | null;
  metadata: Record<string, unknown> | null;
}

/** A server under test, whatever runs it. */
interface Target {
  url: string;
  rootToken: string;
  keysHex: string[];
  sent: Sent[];
  /** Every secret value and token text used: none may appear in the audit table, storage or logs. */
  secrets: Set<string>;
  rows(): Promise<Row[]>;
  /** Every byte of the storage (database file and WAL, or the storage table's rows). */
  storageBytes(): Promise<Buffer>;
  /** Makes every insert into the audit table fail (`true`) or work again (`false`). */
  auditDown(down: boolean): Promise<void>;
  /** Makes every write of the keyring record fail (`true`) or work again (`false`). */
  keyringDown(down: boolean): Promise<void>;
}

const KEYRING_KEY = ".egide/keyring";

async function send(
  t: Target,
  method: string,
  url: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> },
  expected: { operation: string; path: string; user: string | null; audited?: boolean },
): Promise<Reply> {
  const sentAt = Date.now();
  const reply = await call(t.url, method, url, options);
  const requestId =
    reply.body && typeof reply.body === "object" && typeof reply.body.request_id === "string"
      ? (reply.body.request_id as string)
      : undefined;
  t.sent.push({ method, url, status: reply.status, requestId, ...expected, audited: expected.audited ?? true, sentAt });
  return reply;
}

const secret = (label: string) => `${label}-S3CR3T-${randomBytes(9).toString("hex")}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The varied sequence: successes, 403s, 404s, 400s (bad JSON, bad data, a check-and-set mismatch), sealed 503s,
 * KV writes with known secret values, token creation, lookup, revoke. Returns what later
 * checks need.
 */
async function runSequence(t: Target): Promise<{ rootAccessor: string; childAccessor: string; since: string; sentBeforeSince: number }> {
  const root = t.rootToken;
  const self = await send(
    t,
    "GET",
    "/v1/auth/token/lookup-self",
    { token: root },
    { operation: "read", path: "auth/token/lookup-self", user: null },
  );
  expect(self.status).toBe(200);
  const rootAccessor = self.body.data.accessor as string;
  (t.sent.at(-1) as Sent).user = rootAccessor;

  const s1 = secret("first");
  const s2 = secret("second");
  const s3 = secret("as-string");
  const s4 = secret("cas-loser");
  const s5 = secret("patched");
  const s6 = secret("sealed-write");
  for (const s of [s1, s2, s3, s4, s5, s6]) t.secrets.add(s);

  expect((await send(t, "GET", "/v1/sys/health", {}, { operation: "read", path: "sys/health", user: null })).status).toBe(200);
  expect((await send(t, "GET", "/v1/sys/seal-status", {}, { operation: "read", path: "sys/seal-status", user: null })).status).toBe(200);
  expect(
    (
      await send(
        t,
        "POST",
        "/v1/secret/data/app/db",
        { token: root, body: { data: { password: s1 } } },
        { operation: "create", path: "secret/data/app/db", user: rootAccessor },
      )
    ).status,
  ).toBe(200);
  expect(
    (
      await send(
        t,
        "PUT",
        "/v1/secret/data/app/db",
        { token: root, body: { data: { password: s2 } } },
        { operation: "update", path: "secret/data/app/db", user: rootAccessor },
      )
    ).status,
  ).toBe(200);
  const read = await send(
    t,
    "GET",
    "/v1/secret/data/app/db",
    { token: root },
    { operation: "read", path: "secret/data/app/db", user: rootAccessor },
  );
  expect(read.body.data.data).toEqual({ password: s2 });
  expect(
    (
      await send(
        t,
        "GET",
        "/v1/secret/data/app/missing",
        { token: root },
        { operation: "read", path: "secret/data/app/missing", user: rootAccessor },
      )
    ).status,
  ).toBe(404);
  expect((await send(t, "GET", "/v1/secret/data/app/db", {}, { operation: "read", path: "secret/data/app/db", user: null })).status).toBe(
    403,
  );
  expect(
    (await send(t, "GET", "/v1/secret/data/app/db", { token: "egs.bogus" }, { operation: "read", path: "secret/data/app/db", user: null }))
      .status,
  ).toBe(403);

  const policy = `path "secret/data/app/*" { capabilities = ["read"] }`;
  expect(
    (
      await send(
        t,
        "PUT",
        "/v1/sys/policies/acl/app-reader",
        { token: root, body: { policy } },
        { operation: "update", path: "sys/policies/acl/app-reader", user: rootAccessor },
      )
    ).status,
  ).toBe(204);
  const created = await send(
    t,
    "POST",
    "/v1/auth/token/create",
    { token: root, body: { policies: ["app-reader"], display_name: "audited" } },
    { operation: "update", path: "auth/token/create", user: rootAccessor },
  );
  expect(created.status).toBe(200);
  const child = created.body.auth.client_token as string;
  const childAccessor = created.body.auth.accessor as string;
  t.secrets.add(child);

  expect(
    (
      await send(
        t,
        "GET",
        "/v1/secret/data/app/db",
        { token: child },
        { operation: "read", path: "secret/data/app/db", user: childAccessor },
      )
    ).status,
  ).toBe(200);
  expect(
    (
      await send(
        t,
        "POST",
        "/v1/secret/data/app/db",
        { token: child, body: { data: { password: s1 } } },
        { operation: "update", path: "secret/data/app/db", user: childAccessor },
      )
    ).status,
  ).toBe(403);
  expect(
    (
      await send(
        t,
        "GET",
        "/v1/sys/mounts",
        { headers: { authorization: `Bearer ${child}` } },
        { operation: "read", path: "sys/mounts", user: childAccessor },
      )
    ).status,
  ).toBe(403);

  await sleep(5);
  const since = new Date().toISOString();
  const sentBeforeSince = t.sent.length;
  await sleep(5);

  expect(
    (
      await send(
        t,
        "POST",
        "/v1/secret/data/app/db",
        { token: root, rawBody: `{"data": {"password": "${s3}"`, headers: { "content-type": "application/json" } },
        { operation: "update", path: "secret/data/app/db", user: rootAccessor },
      )
    ).status,
  ).toBe(400);
  expect(
    (
      await send(
        t,
        "POST",
        "/v1/secret/data/app/db",
        { token: root, body: { data: s3 } },
        { operation: "update", path: "secret/data/app/db", user: rootAccessor },
      )
    ).status,
  ).toBe(400);
  expect(
    (
      await send(
        t,
        "POST",
        "/v1/secret/data/app/db",
        { token: root, body: { data: { password: s4 }, options: { cas: 1 } } },
        { operation: "update", path: "secret/data/app/db", user: rootAccessor },
      )
    ).status,
  ).toBe(400);
  expect(
    (
      await send(
        t,
        "PATCH",
        "/v1/secret/data/app/db",
        { token: root, body: { data: { extra: s5 } }, headers: { "content-type": "application/merge-patch+json" } },
        { operation: "patch", path: "secret/data/app/db", user: rootAccessor },
      )
    ).status,
  ).toBe(200);
  expect(
    (
      await send(
        t,
        "LIST",
        "/v1/secret/metadata/app",
        { token: root },
        { operation: "list", path: "secret/metadata/app/", user: rootAccessor },
      )
    ).status,
  ).toBe(200);
  expect(
    (
      await send(
        t,
        "GET",
        "/v1/auth/token/lookup-self",
        { headers: { "x-egide-token": child } },
        { operation: "read", path: "auth/token/lookup-self", user: childAccessor },
      )
    ).status,
  ).toBe(200);
  expect(
    (
      await send(
        t,
        "POST",
        "/v1/auth/token/lookup",
        { token: root, body: { token: child } },
        { operation: "update", path: "auth/token/lookup", user: rootAccessor },
      )
    ).status,
  ).toBe(200);
  expect(
    (await send(t, "GET", "/v1/nomount/x", { token: root }, { operation: "read", path: "nomount/x", user: rootAccessor })).status,
  ).toBe(404);
  expect((await send(t, "GET", "/nope", {}, { operation: "read", path: "nope", user: null })).status).toBe(404);

  // sealed: 503s
  expect(
    (await send(t, "PUT", "/v1/sys/seal", { token: root }, { operation: "update", path: "sys/seal", user: rootAccessor })).status,
  ).toBe(204);
  expect(
    (await send(t, "GET", "/v1/secret/data/app/db", { token: root }, { operation: "read", path: "secret/data/app/db", user: null })).status,
  ).toBe(503);
  expect(
    (
      await send(
        t,
        "POST",
        "/v1/secret/data/app/db",
        { token: root, body: { data: { password: s6 } } },
        { operation: "update", path: "secret/data/app/db", user: null },
      )
    ).status,
  ).toBe(503);
  expect((await send(t, "GET", "/v1/sys/seal-status", {}, { operation: "read", path: "sys/seal-status", user: null })).body.sealed).toBe(
    true,
  );
  for (const key of t.keysHex) {
    expect(
      (await send(t, "PUT", "/v1/sys/unseal", { body: { key } }, { operation: "update", path: "sys/unseal", user: null })).status,
    ).toBe(200);
  }

  expect(
    (
      await send(
        t,
        "POST",
        "/v1/auth/token/revoke",
        { token: root, body: { token: child } },
        { operation: "update", path: "auth/token/revoke", user: rootAccessor },
      )
    ).status,
  ).toBe(204);
  expect(
    (await send(t, "GET", "/v1/secret/data/app/db", { token: child }, { operation: "read", path: "secret/data/app/db", user: null }))
      .status,
  ).toBe(403);
  expect(
    (
      await send(
        t,
        "DELETE",
        "/v1/secret/data/app/db",
        { token: root },
        { operation: "delete", path: "secret/data/app/db", user: rootAccessor },
      )
    ).status,
  ).toBe(204);
  expect(
    (
      await send(
        t,
        "GET",
        "/v1/sys/metrics?format=prometheus",
        { token: root },
        { operation: "read", path: "sys/metrics", user: rootAccessor },
      )
    ).status,
  ).toBe(200);
  return { rootAccessor, childAccessor, since, sentBeforeSince };
}

/** Each audited request has exactly one row, in order, with the expected fields. */
function expectOneRowPerRequest(rows: Row[], sent: Sent[]): void {
  const audited = sent.filter((s) => s.audited);
  expect(rows.map((r) => `${r.operation} ${r.path}`)).toEqual(audited.map((s) => `${s.operation} ${s.path}`));
  for (const [i, s] of audited.entries()) {
    const row = rows[i] as Row;
    const label = `${s.method} ${s.url} -> ${s.status}`;
    expect(row.source_ip, label).toBe("127.0.0.1");
    expect(row.user_id, label).toBe(s.user);
    expect(row.success, label).toBe(s.status < 400);
    expect(row.metadata?.status, label).toBe(s.status);
    expect(row.metadata?.method, label).toBe(s.method);
    expect(row.request_id, label).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    if (s.requestId !== undefined) expect(row.request_id, label).toBe(s.requestId);
    if (s.status >= 400) expect(row.error_message === null || typeof row.error_message === "string", label).toBe(true);
    else expect(row.error_message, label).toBeNull();
  }
  // request ids are unique: one row per request, never two
  expect(new Set(rows.map((r) => r.request_id)).size).toBe(rows.length);
  for (const row of rows) expect(row.user_id ?? "").not.toMatch(/^egs\./);
}

function expectNoSecretIn(text: string | Buffer, secrets: Iterable<string>, where: string): void {
  const haystack = typeof text === "string" ? Buffer.from(text, "utf8") : text;
  const found = [...secrets].filter((s) => haystack.includes(Buffer.from(s, "utf8")));
  expect(found, `secret values or token texts found in ${where}`).toEqual([]);
}

/** The shared checks of both backends. */
function auditSuite(name: string, setup: () => Promise<Target>, teardown: () => Promise<{ logs?: string }>): void {
  describe(name, () => {
    let t: Target;
    let seq: Awaited<ReturnType<typeof runSequence>>;

    beforeAll(async () => {
      t = await setup();
      seq = await runSequence(t);
    }, 60_000);

    afterAll(async () => {
      await teardown();
    });

    it("writes exactly one row per request, with operation, path, 127.0.0.1, the accessor, success and status", async () => {
      expectOneRowPerRequest(await t.rows(), t.sent);
      const root = t.sent.filter((s) => s.user === seq.rootAccessor);
      expect(root.length).toBeGreaterThan(10);
      expect(t.sent.some((s) => s.status === 503)).toBe(true);
      expect(t.sent.some((s) => s.status === 400)).toBe(true);
      expect(t.sent.some((s) => s.status === 404)).toBe(true);
      expect(t.sent.some((s) => s.status === 403 && s.user === seq.childAccessor)).toBe(true);
    });

    it("keeps every secret value and token text out of the audit table and the storage", async () => {
      const rows = await t.rows();
      expectNoSecretIn(JSON.stringify(rows), [...t.secrets, t.rootToken], "the audit table");
      expectNoSecretIn(await t.storageBytes(), [...t.secrets, t.rootToken], "the storage");
      // and the row of the failed bad-data write names the problem without the value
      const badData = rows.find((r) => r.error_message?.includes("expected a map"));
      expect(badData?.error_message).toContain("got a string");
    });

    it("GET /v1/sys/audit-log answers the rows to the root token, with since, path_prefix and request_id filters", async () => {
      const forbidden = await send(t, "GET", "/v1/sys/audit-log", {}, { operation: "read", path: "sys/audit-log", user: null });
      expect(forbidden.status).toBe(403);

      const all = await send(
        t,
        "GET",
        "/v1/sys/audit-log?limit=10000",
        { token: t.rootToken },
        { operation: "read", path: "sys/audit-log", user: seq.rootAccessor },
      );
      expect(all.status).toBe(200);
      const entries = all.body.data.entries as Array<Record<string, unknown>>;
      // every request before this one (this one's row is written after its answer is built)
      const before = t.sent.slice(0, -1).filter((s) => s.audited);
      expect(entries.map((e) => e.path)).toEqual(before.map((s) => s.path));
      expect(entries.every((e) => e.source_ip === "127.0.0.1")).toBe(true);
      expectNoSecretIn(JSON.stringify(all.body), [...t.secrets, t.rootToken], "GET /v1/sys/audit-log");

      const withId = t.sent.find((s) => s.requestId !== undefined && s.path === "auth/token/create") as Sent;
      const one = await send(
        t,
        "GET",
        `/v1/sys/audit-log?request_id=${withId.requestId}`,
        { token: t.rootToken },
        { operation: "read", path: "sys/audit-log", user: seq.rootAccessor },
      );
      expect(one.status).toBe(200);
      expect(one.body.data.entries).toHaveLength(1);
      expect(one.body.data.entries[0]).toMatchObject({
        request_id: withId.requestId,
        path: "auth/token/create",
        operation: "update",
        user_id: seq.rootAccessor,
        success: true,
      });

      const prefixed = await send(
        t,
        "GET",
        "/v1/sys/audit-log?path_prefix=secret/data/app/",
        { token: t.rootToken },
        { operation: "read", path: "sys/audit-log", user: seq.rootAccessor },
      );
      const expectedPrefixed = t.sent.slice(0, -1).filter((s) => s.audited && s.path.startsWith("secret/data/app/"));
      expect((prefixed.body.data.entries as Array<{ path: string }>).map((e) => e.path)).toEqual(expectedPrefixed.map((s) => s.path));

      const since = await send(
        t,
        "GET",
        `/v1/sys/audit-log?since=${encodeURIComponent(seq.since)}`,
        { token: t.rootToken },
        { operation: "read", path: "sys/audit-log", user: seq.rootAccessor },
      );
      const expectedSince = t.sent.slice(seq.sentBeforeSince, -1).filter((s) => s.audited);
      expect((since.body.data.entries as Array<{ path: string }>).map((e) => e.path)).toEqual(expectedSince.map((s) => s.path));

      const failures = await send(
        t,
        "GET",
        "/v1/sys/audit-log?success=false&path_prefix=secret/",
        { token: t.rootToken },
        { operation: "read", path: "sys/audit-log", user: seq.rootAccessor },
      );
      const expectedFailures = t.sent.slice(0, -1).filter((s) => s.audited && s.status >= 400 && s.path.startsWith("secret/"));
      expect((failures.body.data.entries as Array<{ metadata: { status: number } }>).map((e) => e.metadata.status)).toEqual(
        expectedFailures.map((s) => s.status),
      );

      const bad = await send(
        t,
        "GET",
        "/v1/sys/audit-log?request_id=nope",
        { token: t.rootToken },
        { operation: "read", path: "sys/audit-log", user: seq.rootAccessor },
      );
      expect(bad.status).toBe(400);
      // a token without sudo on sys/audit-log is refused
      await send(
        t,
        "PUT",
        "/v1/sys/policies/acl/audit-read",
        { token: t.rootToken, body: { policy: `path "sys/audit-log" { capabilities = ["read"] }` } },
        { operation: "update", path: "sys/policies/acl/audit-read", user: seq.rootAccessor },
      );
      const reader = await send(
        t,
        "POST",
        "/v1/auth/token/create",
        { token: t.rootToken, body: { policies: ["audit-read"] } },
        { operation: "update", path: "auth/token/create", user: seq.rootAccessor },
      );
      t.secrets.add(reader.body.auth.client_token);
      const noSudo = await send(
        t,
        "GET",
        "/v1/sys/audit-log",
        { token: reader.body.auth.client_token },
        { operation: "read", path: "sys/audit-log", user: reader.body.auth.accessor },
      );
      expect(noSudo.status).toBe(403);

      expectOneRowPerRequest(await t.rows(), t.sent);
    });

    it("an audit failure fails the request and leaves the data unchanged (write, read, token, policy, seal, rotate)", async () => {
      const oldValue = secret("old");
      const newValue = secret("new");
      const rootAccessor = seq.rootAccessor;
      t.secrets.add(oldValue);
      t.secrets.add(newValue);
      expect(
        (
          await send(
            t,
            "POST",
            "/v1/secret/data/fault/k",
            { token: t.rootToken, body: { data: { v: oldValue } } },
            { operation: "create", path: "secret/data/fault/k", user: rootAccessor },
          )
        ).status,
      ).toBe(200);
      const term = (
        await send(
          t,
          "GET",
          "/v1/sys/key-status",
          { token: t.rootToken },
          { operation: "read", path: "sys/key-status", user: rootAccessor },
        )
      ).body.data.term as number;
      const rowsBefore = (await t.rows()).length;

      await t.auditDown(true);
      const down = { audited: false };
      let write: Reply;
      let readDown: Reply;
      let token: Reply;
      let policyWrite: Reply;
      let seal: Reply;
      let rotate: Reply;
      let anonymous: Reply;
      try {
        write = await send(
          t,
          "POST",
          "/v1/secret/data/fault/k",
          { token: t.rootToken, body: { data: { v: newValue } } },
          { operation: "update", path: "secret/data/fault/k", user: rootAccessor, ...down },
        );
        readDown = await send(
          t,
          "GET",
          "/v1/secret/data/fault/k",
          { token: t.rootToken },
          { operation: "read", path: "secret/data/fault/k", user: rootAccessor, ...down },
        );
        token = await send(
          t,
          "POST",
          "/v1/auth/token/create",
          { token: t.rootToken, body: { policies: ["app-reader"] } },
          { operation: "update", path: "auth/token/create", user: rootAccessor, ...down },
        );
        policyWrite = await send(
          t,
          "PUT",
          "/v1/sys/policies/acl/fault-policy",
          { token: t.rootToken, body: { policy: `path "x" { capabilities = ["read"] }` } },
          { operation: "update", path: "sys/policies/acl/fault-policy", user: rootAccessor, ...down },
        );
        seal = await send(
          t,
          "PUT",
          "/v1/sys/seal",
          { token: t.rootToken },
          { operation: "update", path: "sys/seal", user: rootAccessor, ...down },
        );
        rotate = await send(
          t,
          "POST",
          "/v1/sys/rotate",
          { token: t.rootToken },
          { operation: "update", path: "sys/rotate", user: rootAccessor, ...down },
        );
        anonymous = await send(
          t,
          "GET",
          "/v1/secret/data/fault/k",
          {},
          { operation: "read", path: "secret/data/fault/k", user: null, ...down },
        );
      } finally {
        await t.auditDown(false);
      }

      expect(write.status).toBeGreaterThanOrEqual(500);
      expect(readDown.status).toBeGreaterThanOrEqual(500);
      expectNoSecretIn(JSON.stringify(readDown.body), [oldValue, newValue], "the answer of a read while the audit log is down");
      expect(token.status).toBeGreaterThanOrEqual(500);
      expect(JSON.stringify(token.body)).not.toContain("egs.");
      expect(policyWrite.status).toBeGreaterThanOrEqual(500);
      expect(seal.status).toBeGreaterThanOrEqual(500);
      expect(rotate.status).toBeGreaterThanOrEqual(500);
      expect(anonymous.status).toBeGreaterThanOrEqual(500);
      // nothing was written to the audit log while it was down
      expect((await t.rows()).length).toBe(rowsBefore);

      // and nothing changed
      const after = await send(
        t,
        "GET",
        "/v1/secret/data/fault/k",
        { token: t.rootToken },
        { operation: "read", path: "secret/data/fault/k", user: rootAccessor },
      );
      expect(after.status).toBe(200);
      expect(after.body.data.data).toEqual({ v: oldValue });
      expect(after.body.data.metadata.version).toBe(1);
      expect(
        (
          await send(
            t,
            "GET",
            "/v1/sys/policies/acl/fault-policy",
            { token: t.rootToken },
            { operation: "read", path: "sys/policies/acl/fault-policy", user: rootAccessor },
          )
        ).status,
      ).toBe(404);
      expect(
        (await send(t, "GET", "/v1/sys/seal-status", {}, { operation: "read", path: "sys/seal-status", user: null })).body.sealed,
      ).toBe(false);
      expect(
        (
          await send(
            t,
            "GET",
            "/v1/sys/key-status",
            { token: t.rootToken },
            { operation: "read", path: "sys/key-status", user: rootAccessor },
          )
        ).body.data.term,
      ).toBe(term);
      expectOneRowPerRequest(await t.rows(), t.sent);
      expectNoSecretIn(JSON.stringify(await t.rows()), [...t.secrets, t.rootToken], "the audit table");
    });

    it("a rotation that fails after its audit row was written is not audited as a success", async () => {
      const rootAccessor = seq.rootAccessor;
      const term = (
        await send(
          t,
          "GET",
          "/v1/sys/key-status",
          { token: t.rootToken },
          { operation: "read", path: "sys/key-status", user: rootAccessor },
        )
      ).body.data.term as number;
      await t.keyringDown(true);
      let rotate: Reply;
      try {
        rotate = await send(
          t,
          "POST",
          "/v1/sys/rotate",
          { token: t.rootToken },
          { operation: "update", path: "sys/rotate", user: rootAccessor },
        );
      } finally {
        await t.keyringDown(false);
      }
      expect(rotate.status).toBeGreaterThanOrEqual(500);
      expect(
        (
          await send(
            t,
            "GET",
            "/v1/sys/key-status",
            { token: t.rootToken },
            { operation: "read", path: "sys/key-status", user: rootAccessor },
          )
        ).body.data.term,
      ).toBe(term);
      // the one row of the failed rotation must say it failed, with the status answered
      const rows = await t.rows();
      const row = rows.filter((r) => r.path === "sys/rotate").at(-1) as Row;
      expect({ success: row.success, status: row.metadata?.status }).toEqual({ success: false, status: rotate.status });
      expectOneRowPerRequest(rows, t.sent);
    });

    it("keeps every secret value and token text out of the server's logs", async () => {
      const { logs } = await teardown();
      if (logs === undefined) return; // this backend's server runs in-process with log_level = "silent"
      // the capture works: the logger wrote request lines and the audit failures
      expect(logs).toContain("incoming request");
      expect(logs).toContain("audit log write failed");
      expectNoSecretIn(logs, [...t.secrets, t.rootToken], "the server's stdout/stderr");
    });
  });
}

// --- SQLite: a child process, logs captured --------------------------------------------------

const BIN = fileURLToPath(new URL("../dist/bin/egide-server.js", import.meta.url));

/** The newest modification time of the files below `dir` with one of `extensions`. */
function newestMtime(dir: string, extensions: string[]): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, extensions));
    else if (extensions.some((e) => entry.name.endsWith(e))) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

interface ChildServer {
  child: ChildProcessWithoutNullStreams;
  url: string;
  dir: string;
  dbPath: string;
  output: () => string;
  stop(): Promise<string>;
}

async function startChildServer(): Promise<ChildServer> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build the workspace first (npx -y pnpm@12.4.2 build)`);
  // The child runs the built server: refuse to test a build older than the sources.
  const src = fileURLToPath(new URL("../src", import.meta.url));
  const dist = fileURLToPath(new URL("../dist", import.meta.url));
  if (newestMtime(src, [".ts"]) > newestMtime(dist, [".js"])) {
    throw new Error("apps/server/dist is older than apps/server/src: rebuild first (cd /work/main && npx -y pnpm@12.4.2 build)");
  }
  const dir = mkdtempSync(join(tmpdir(), "egide-audit-e2e-"));
  const dbPath = join(dir, "egide.db");
  const configPath = join(dir, "egide.toml");
  writeFileSync(
    configPath,
    `log_level = "info"\n[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(dbPath)}\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`,
  );
  const child = spawn(process.execPath, [BIN, "--config", configPath], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${out}`)), 20_000);
    const check = () => {
      const match = /Egide listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    };
    child.stdout.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}):\n${out}`));
    });
  });
  let stopped: Promise<string> | undefined;
  return {
    child,
    url,
    dir,
    dbPath,
    output: () => out,
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null) {
          child.kill("SIGTERM");
          const timeout = setTimeout(() => child.kill("SIGKILL"), 10_000);
          await exited;
          clearTimeout(timeout);
        }
        return out;
      })();
      return stopped;
    },
  };
}

let sqliteChild: ChildServer | undefined;
let sqliteLogs: string | undefined;

auditSuite(
  "audit over SQLite (child process, log_level info)",
  async () => {
    sqliteChild = await startChildServer();
    const server = sqliteChild;
    const target: Target = {
      url: server.url,
      rootToken: "",
      keysHex: [],
      sent: [],
      secrets: new Set(),
      async rows() {
        const db = new Database(server.dbPath, { readonly: true, fileMustExist: true });
        try {
          const raw = db.prepare("SELECT * FROM egide_audit_log ORDER BY id").all() as Array<Record<string, unknown>>;
          return raw.map((r) => ({
            id: Number(r.id),
            timestamp: Number(r.timestamp),
            operation: r.operation as string,
            path: r.path as string,
            source_ip: r.source_ip as string | null,
            user_id: r.user_id as string | null,
            request_id: r.request_id as string | null,
            success: r.success === 1,
            error_message: r.error_message as string | null,
            metadata: r.metadata === null ? null : (JSON.parse(r.metadata as string) as Record<string, unknown>),
          }));
        } finally {
          db.close();
        }
      },
      async storageBytes() {
        const parts = [server.dbPath, `${server.dbPath}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p));
        return Buffer.concat(parts);
      },
      async auditDown(down) {
        const db = new Database(server.dbPath, { fileMustExist: true, timeout: 5000 });
        try {
          db.exec(
            down
              ? "CREATE TRIGGER audit_down BEFORE INSERT ON egide_audit_log BEGIN SELECT RAISE(FAIL, 'audit down'); END;"
              : "DROP TRIGGER audit_down;",
          );
        } finally {
          db.close();
        }
      },
      async keyringDown(down) {
        const db = new Database(server.dbPath, { fileMustExist: true, timeout: 5000 });
        try {
          db.exec(
            down
              ? `CREATE TRIGGER keyring_down_u BEFORE UPDATE ON egide_storage WHEN NEW.key = '${KEYRING_KEY}' BEGIN SELECT RAISE(FAIL, 'keyring down'); END;
                 CREATE TRIGGER keyring_down_i BEFORE INSERT ON egide_storage WHEN NEW.key = '${KEYRING_KEY}' BEGIN SELECT RAISE(FAIL, 'keyring down'); END;`
              : "DROP TRIGGER keyring_down_u; DROP TRIGGER keyring_down_i;",
          );
        } finally {
          db.close();
        }
      },
    };
    // initialise and unseal over HTTP: these requests are audited too
    const init = await send(
      target,
      "PUT",
      "/v1/sys/init",
      { body: { secret_shares: 1, secret_threshold: 1 } },
      { operation: "update", path: "sys/init", user: null },
    );
    expect(init.status).toBe(200);
    target.rootToken = init.body.root_token;
    target.keysHex = init.body.keys;
    target.secrets.add(init.body.root_token);
    for (const key of [...init.body.keys, ...init.body.keys_base64] as string[]) target.secrets.add(key);
    const unseal = await send(
      target,
      "PUT",
      "/v1/sys/unseal",
      { body: { key: init.body.keys[0] } },
      { operation: "update", path: "sys/unseal", user: null },
    );
    expect(unseal.body.sealed).toBe(false);
    return target;
  },
  async () => {
    if (sqliteChild) {
      sqliteLogs = await sqliteChild.stop();
      rmSync(sqliteChild.dir, { recursive: true, force: true });
      sqliteChild = undefined;
    }
    return sqliteLogs === undefined ? {} : { logs: sqliteLogs };
  },
);

// --- PostgreSQL: in-process ------------------------------------------------------------------

let pgServer: TestServer | undefined;

auditSuite(
  "audit over PostgreSQL",
  async () => {
    pgServer = await startTestServer({ storage: "postgresql" });
    const server = pgServer;
    const { database, schema } = server.postgres as { database: string; schema: string };
    const table = `${quoteIdentifier(schema)}.egide_audit_log`;
    const target: Target = {
      url: server.url,
      rootToken: server.rootToken,
      keysHex: server.keys.map((k) => k.toString("hex")),
      sent: [],
      secrets: new Set([server.rootToken, ...server.keys.flatMap((k) => [k.toString("hex"), k.toString("base64")])]),
      rows: () =>
        withClient(database, async (client) => {
          const result = await client.query(`SELECT * FROM ${table} ORDER BY id`);
          return result.rows.map((r: Record<string, unknown>) => ({
            id: Number(r.id),
            timestamp: (r.timestamp as Date).getTime(),
            operation: r.operation as string,
            path: r.path as string,
            source_ip: r.source_ip as string | null,
            user_id: r.user_id as string | null,
            request_id: r.request_id as string | null,
            success: r.success as boolean,
            error_message: r.error_message as string | null,
            metadata: r.metadata as Record<string, unknown> | null,
          }));
        }),
      storageBytes: () =>
        withClient(database, async (client) => {
          const result = await client.query(`SELECT key, value FROM ${quoteIdentifier(schema)}.egide_storage`);
          return Buffer.concat(result.rows.flatMap((r: { key: string; value: Buffer }) => [Buffer.from(r.key), r.value]));
        }),
      auditDown: (down) =>
        withClient(database, async (client) => {
          if (down) {
            await client.query(
              `CREATE FUNCTION ${quoteIdentifier(schema)}.audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$`,
            );
            await client.query(
              `CREATE TRIGGER audit_down BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${quoteIdentifier(schema)}.audit_down()`,
            );
          } else {
            await client.query(`DROP TRIGGER audit_down ON ${table}`);
            await client.query(`DROP FUNCTION ${quoteIdentifier(schema)}.audit_down()`);
          }
        }),
      keyringDown: (down) =>
        withClient(database, async (client) => {
          const s = quoteIdentifier(schema);
          if (down) {
            await client.query(
              `CREATE FUNCTION ${s}.keyring_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'keyring down'; END $$`,
            );
            await client.query(
              `CREATE TRIGGER keyring_down BEFORE INSERT OR UPDATE ON ${s}.egide_storage FOR EACH ROW WHEN (NEW.key = '${KEYRING_KEY}') EXECUTE FUNCTION ${s}.keyring_down()`,
            );
          } else {
            await client.query(`DROP TRIGGER keyring_down ON ${s}.egide_storage`);
            await client.query(`DROP FUNCTION ${s}.keyring_down()`);
          }
        }),
    };
    return target;
  },
  async () => {
    await pgServer?.close();
    pgServer = undefined;
    return {};
  },
);
