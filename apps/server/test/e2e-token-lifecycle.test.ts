/**
 * End to end, over a SQLite file and a PostgreSQL database (each with a second server instance
 * on the same storage): token lifetimes and limits as Vault has them. TTLs granted exactly (in
 * whole seconds); renewals up to explicit_max_ttl and no further; periodic tokens; use-limited
 * tokens (one use per request, atomic across instances, revoked at the last); revoke-orphan vs
 * revoke; token roles applied at creation; entries written by earlier versions still load; and
 * no token text in any audit row. Real clocks: the expiry tests really wait.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../src/auth/token-store.js";
import { call, type JsonBody, startTestServer, type TestServer } from "@egide/test-server";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([["sqlite"], ["postgresql"]] as const)("token lifecycle on %s", (storage) => {
  let ts: TestServer;
  let second: TestServer;
  const tokensSeen = new Set<string>();
  const on = (server: TestServer, method: string, path: string, token: string | undefined, body?: unknown) =>
    call(server.url, method, path, { ...(token === undefined ? {} : { token }), ...(body === undefined ? {} : { body }) });
  const req = (method: string, path: string, token: string | undefined, body?: unknown) => on(ts, method, path, token, body);
  const root = (method: string, path: string, body?: unknown) => req(method, path, ts.rootToken, body);
  const create = async (body: Record<string, unknown>, token = ts.rootToken, path = "/v1/auth/token/create"): Promise<JsonBody> => {
    const reply = await req("POST", path, token, body);
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    tokensSeen.add(reply.body.auth.client_token);
    return reply.body.auth;
  };
  const putPolicy = async (name: string, policy: string) => {
    expect((await root("PUT", `/v1/sys/policies/acl/${name}`, { policy })).status).toBe(204);
  };
  const live = async (token: string) => (await req("GET", "/v1/auth/token/lookup-self", token)).status === 200;

  beforeAll(async () => {
    ts = await startTestServer({ storage, label: "token-life" });
    second = await startTestServer(
      storage === "sqlite"
        ? { storage, sqlitePath: ts.sqlitePath as string, label: "token-life-b", uninitialized: true }
        : { storage, postgres: ts.postgres as { database: string; schema: string }, label: "token-life-b" },
    );
    for (const key of ts.keys) {
      expect((await call(second.url, "PUT", "/v1/sys/unseal", { body: { key: key.toString("hex") } })).status).toBe(200);
    }
    await putPolicy("web", `path "secret/data/web/*" { capabilities = ["read"] }`);
    await putPolicy("dev", `path "secret/data/dev/*" { capabilities = ["read"] }`);
    await putPolicy("creator", `path "auth/token/create" { capabilities = ["update"] }`);
    await putPolicy("role-user", `path "auth/token/create/*" { capabilities = ["update"] }`);
  }, 60_000);

  afterAll(async () => {
    await second?.close();
    await ts?.close();
  });

  describe("TTLs granted exactly", () => {
    it("lease_duration is exactly 3600 for ttl=1h, every time (20 creations and 20 renewals)", async () => {
      for (let i = 0; i < 20; i++) {
        const auth = await create({ ttl: "1h" });
        expect(auth.lease_duration).toBe(3600);
        const renewed = await req("POST", "/v1/auth/token/renew-self", auth.client_token, { increment: "1h" });
        expect(renewed.body.auth.lease_duration).toBe(3600);
        const lookup = await req("GET", "/v1/auth/token/lookup-self", auth.client_token);
        expect(lookup.body.data.creation_ttl).toBe(3600);
        expect(lookup.body.data.ttl).toBeLessThanOrEqual(3600);
        expect(lookup.body.data.ttl).toBeGreaterThanOrEqual(3598);
      }
    });

    it("a ttl above the server's max_lease_ttl is capped, with Vault's warning", async () => {
      const reply = await root("POST", "/v1/auth/token/create", { ttl: "100000h" });
      expect(reply.status).toBe(200);
      expect(reply.body.auth.lease_duration).toBeLessThan(100000 * 3600);
      expect(reply.body.warnings[0]).toContain("TTL value is capped accordingly");
    });
  });

  describe("renewals", () => {
    it("renew up to explicit_max_ttl and no further; the token dies at its explicit maximum", async () => {
      const auth = await create({ ttl: "2s", explicit_max_ttl: "5s" });
      expect(auth.lease_duration).toBe(2);
      const first = await req("POST", "/v1/auth/token/renew-self", auth.client_token, { increment: "1h" });
      expect(first.status).toBe(200);
      expect(first.body.auth.lease_duration).toBeLessThanOrEqual(5);
      expect(first.body.auth.lease_duration).toBeGreaterThanOrEqual(4);
      expect(first.body.warnings[0]).toContain("TTL value is capped accordingly");
      const self = await req("GET", "/v1/auth/token/lookup-self", auth.client_token);
      expect(self.body.data.explicit_max_ttl).toBe(5);
      expect(Date.parse(self.body.data.expire_time)).toBeLessThanOrEqual(self.body.data.creation_time * 1000 + 6000);
      await sleep(2500);
      const later = await req("POST", "/v1/auth/token/renew-self", auth.client_token, { increment: "1h" });
      expect(later.status).toBe(200);
      expect(later.body.auth.lease_duration).toBeLessThanOrEqual(3);
      await sleep(3200);
      expect(await live(auth.client_token)).toBe(false);
      const gone = await root("POST", "/v1/auth/token/renew", { token: auth.client_token });
      expect({ status: gone.status, errors: gone.body.errors }).toEqual({ status: 400, errors: ["token not found"] });
    }, 20_000);

    it("a non-renewable token is refused with Vault's message", async () => {
      const auth = await create({ ttl: "1m", renewable: false });
      const reply = await req("POST", "/v1/auth/token/renew-self", auth.client_token, {});
      expect({ status: reply.status, errors: reply.body.errors }).toEqual({ status: 400, errors: ["lease is not renewable"] });
    });

    it("a periodic token: ttl is its period, renewal resets it to the period whatever the increment", async () => {
      const auth = await create({ period: "3s", ttl: "1h" });
      expect(auth.lease_duration).toBe(3);
      const self = await req("GET", "/v1/auth/token/lookup-self", auth.client_token);
      expect(self.body.data).toMatchObject({ period: 3, creation_ttl: 3, explicit_max_ttl: 0 });
      for (let i = 0; i < 3; i++) {
        await sleep(1500);
        const renewed = await req("POST", "/v1/auth/token/renew-self", auth.client_token, { increment: "1h" });
        expect(renewed.status).toBe(200);
        expect(renewed.body.auth.lease_duration).toBe(3);
      }
      // alive well past its first expiry, thanks to the renewals; then dies without them
      expect(await live(auth.client_token)).toBe(true);
      await sleep(3500);
      expect(await live(auth.client_token)).toBe(false);
    }, 20_000);

    it("a periodic token with explicit_max_ttl renews no further than it", async () => {
      const auth = await create({ period: "3s", explicit_max_ttl: "4s" });
      expect(auth.lease_duration).toBe(3);
      await sleep(2100);
      const renewed = await req("POST", "/v1/auth/token/renew-self", auth.client_token, {});
      expect(renewed.body.auth.lease_duration).toBeLessThanOrEqual(2);
    }, 10_000);

    it("period needs sudo (or a role)", async () => {
      const creator = await create({ policies: ["creator"] });
      const reply = await req("POST", "/v1/auth/token/create", creator.client_token, { period: "1h" });
      expect({ status: reply.status, errors: reply.body.errors }).toEqual({
        status: 400,
        errors: ["root or sudo privileges required to create periodic token"],
      });
    });
  });

  describe("use-limited tokens (num_uses)", () => {
    it("each request takes one use; the last use is served, then the token is revoked", async () => {
      await putPolicy("web-writer", `path "secret/data/web/*" { capabilities = ["create", "update", "read"] }`);
      expect((await root("POST", "/v1/secret/data/web/a", { data: { v: 1 } })).status).toBe(200);
      const auth = await create({ policies: ["web-writer"], num_uses: 3 });
      expect(auth.num_uses).toBe(3);
      const first = await req("GET", "/v1/auth/token/lookup-self", auth.client_token);
      expect(first.body.data.num_uses).toBe(2);
      expect((await req("GET", "/v1/secret/data/web/a", auth.client_token)).status).toBe(200);
      // the third (last) use is served, on the other instance
      expect((await on(second, "GET", "/v1/secret/data/web/a", auth.client_token)).status).toBe(200);
      expect((await req("GET", "/v1/secret/data/web/a", auth.client_token)).status).toBe(403);
      const lookup = await root("POST", "/v1/auth/token/lookup", { token: auth.client_token });
      expect(lookup.status).toBe(403);
    });

    it("uses are taken atomically: of concurrent requests on two instances, exactly num_uses succeed", async () => {
      const auth = await create({ num_uses: 5 });
      const replies = await Promise.all(
        Array.from({ length: 14 }, (_, i) => on(i % 2 === 0 ? ts : second, "GET", "/v1/auth/token/lookup-self", auth.client_token)),
      );
      expect(replies.filter((r) => r.status === 200)).toHaveLength(5);
      expect(replies.filter((r) => r.status === 403)).toHaveLength(9);
    }, 30_000);

    it("a use-limited token cannot create child tokens (Vault's rule)", async () => {
      const auth = await create({ policies: ["creator"], num_uses: 5 });
      const reply = await req("POST", "/v1/auth/token/create", auth.client_token, {});
      expect({ status: reply.status, errors: reply.body.errors }).toEqual({
        status: 400,
        errors: ["restricted use token cannot generate child tokens"],
      });
      expect((await root("POST", "/v1/auth/token/create", { num_uses: -1 })).status).toBe(400);
    });
  });

  describe("revocation", () => {
    it("revoke-orphan revokes the token only: its children live on as orphans", async () => {
      const parent = await create({ policies: ["creator"] });
      const child = await create({}, parent.client_token);
      const grandchild = await create({}, child.client_token);
      expect(child.orphan).toBe(false);
      expect((await root("POST", "/v1/auth/token/revoke-orphan", { token: parent.client_token })).status).toBe(204);
      expect(await live(parent.client_token)).toBe(false);
      const childSelf = await req("GET", "/v1/auth/token/lookup-self", child.client_token);
      expect(childSelf.status).toBe(200);
      expect(childSelf.body.data.orphan).toBe(true);
      const grandSelf = await on(second, "GET", "/v1/auth/token/lookup-self", grandchild.client_token);
      expect(grandSelf.body.data.orphan).toBe(false);
      // a plain revoke of the (now orphan) child still takes its own subtree
      expect((await root("POST", "/v1/auth/token/revoke", { token: child.client_token })).status).toBe(204);
      expect(await live(grandchild.client_token)).toBe(false);
    });

    it("revoke (not orphan) revokes the whole tree; revoke-accessor too", async () => {
      const parent = await create({ policies: ["creator"] });
      const child = await create({ policies: ["creator"] }, parent.client_token);
      const grandchild = await create({}, child.client_token);
      const other = await create({});
      expect((await root("POST", "/v1/auth/token/revoke", { token: parent.client_token })).status).toBe(204);
      for (const t of [parent, child, grandchild]) expect(await live(t.client_token)).toBe(false);
      expect(await live(other.client_token)).toBe(true);
      const p2 = await create({ policies: ["creator"] });
      const c2 = await create({}, p2.client_token);
      expect((await root("POST", "/v1/auth/token/revoke-accessor", { accessor: p2.accessor })).status).toBe(204);
      expect(await live(c2.client_token)).toBe(false);
    });

    it("tidy revokes expired tokens and drops their accessors from the list", async () => {
      const auth = await create({ ttl: "1s" });
      await sleep(1200);
      // expired tokens are only refused until tidy removes them from the storage
      const key = `sys/token/accessor/${auth.accessor}`;
      expect(await ts.server.context.storage.get(key)).not.toBeNull();
      expect((await root("POST", "/v1/auth/token/tidy")).status).toBe(202);
      expect(await ts.server.context.storage.get(key)).toBeNull();
      expect(await ts.server.context.storage.get(`sys/token/id/${hashToken(auth.client_token)}`)).toBeNull();
      const list = await root("LIST", "/v1/auth/token/accessors");
      expect(list.body.data.keys).not.toContain(auth.accessor);
      expect((await root("POST", "/v1/auth/token/lookup-accessor", { accessor: auth.accessor })).status).toBe(400);
    });
  });

  describe("roles applied at creation", () => {
    it("policies must be within allowed_policies; disallowed ones are refused", async () => {
      expect((await root("POST", "/v1/auth/token/roles/web-only", { allowed_policies: ["web"] })).status).toBe(204);
      const user = await create({ policies: ["role-user"] });
      const ok = await create({ policies: ["web"] }, user.client_token, "/v1/auth/token/create/web-only");
      expect(ok.policies).toEqual(["default", "web"]);
      const defaulted = await create({}, user.client_token, "/v1/auth/token/create/web-only");
      expect(defaulted.policies).toEqual(["default", "web"]);
      const outside = await req("POST", "/v1/auth/token/create/web-only", user.client_token, { policies: ["dev"] });
      expect(outside.status).toBe(400);
      expect(outside.body.errors[0]).toContain("must be subset of the role's allowed policies");

      expect((await root("POST", "/v1/auth/token/roles/no-dev", { disallowed_policies: "dev,default" })).status).toBe(204);
      const refused = await req("POST", "/v1/auth/token/create/no-dev", ts.rootToken, { policies: ["dev"] });
      expect({ status: refused.status, errors: refused.body.errors }).toEqual({
        status: 400,
        errors: ['token policy "dev" is disallowed by this role'],
      });
      const noDefault = await create({ policies: ["web"] }, ts.rootToken, "/v1/auth/token/create/no-dev");
      expect(noDefault.policies).toEqual(["web"]);
    });

    it("orphan, renewable, token_period, token_explicit_max_ttl and token_num_uses apply without sudo", async () => {
      const body = { allowed_policies: ["web"], orphan: true, renewable: false, token_explicit_max_ttl: "30m", token_num_uses: 4 };
      expect((await root("POST", "/v1/auth/token/roles/strict", body)).status).toBe(204);
      const user = await create({ policies: ["role-user"] });
      const auth = await create({ ttl: "1h" }, user.client_token, "/v1/auth/token/create/strict");
      expect(auth).toMatchObject({ orphan: true, renewable: false, num_uses: 4, lease_duration: 1800 });
      expect((await root("POST", "/v1/auth/token/roles/periodic", { token_period: "2m" })).status).toBe(204);
      const periodic = await create({}, user.client_token, "/v1/auth/token/create/periodic");
      expect(periodic.lease_duration).toBe(120);
      const self = await req("GET", "/v1/auth/token/lookup-self", periodic.client_token);
      expect(self.body.data).toMatchObject({ period: 120, role: "periodic", path: "auth/token/create/periodic" });
    });

    it("role writes follow Vault's existence check: create for a new role, update for an existing one", async () => {
      await putPolicy("role-creator", `path "auth/token/roles/*" { capabilities = ["create"] }`);
      await putPolicy("role-updater", `path "auth/token/roles/*" { capabilities = ["update"] }`);
      const creator = await create({ policies: ["role-creator"] });
      const updater = await create({ policies: ["role-updater"] });
      expect((await req("POST", "/v1/auth/token/roles/fresh", updater.client_token, {})).status).toBe(403);
      expect((await req("POST", "/v1/auth/token/roles/fresh", creator.client_token, {})).status).toBe(204);
      expect((await req("POST", "/v1/auth/token/roles/fresh", creator.client_token, { orphan: true })).status).toBe(403);
      expect((await req("POST", "/v1/auth/token/roles/fresh", updater.client_token, { orphan: true })).status).toBe(204);
    });
  });

  it("a token entry written by an earlier version (no period, num_uses, role, path) still works", async () => {
    const token = `egs.${"A".repeat(43)}`;
    const accessor = "OldAccessor00001";
    const now = Date.now();
    const old = {
      accessor,
      policies: ["default"],
      displayName: "token-old",
      meta: {},
      createdAt: now,
      creationTtlMs: 600_000,
      expiresAt: now + 600_000,
      maxExpiresAt: null,
      renewable: true,
      parentAccessor: null,
    };
    const storage = ts.server.context.storage;
    await storage.put(`sys/token/id/${hashToken(token)}`, Buffer.from(JSON.stringify(old)));
    await storage.put(`sys/token/accessor/${accessor}`, Buffer.from(hashToken(token)));
    const self = await req("GET", "/v1/auth/token/lookup-self", token);
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({ accessor, num_uses: 0, path: "auth/token/create", creation_ttl: 600, explicit_max_ttl: 0 });
    expect(self.body.data.period).toBeUndefined();
    const renewed = await req("POST", "/v1/auth/token/renew-self", token, {});
    expect(renewed.body.auth.lease_duration).toBe(600);
    expect((await req("POST", "/v1/auth/token/revoke-self", token)).status).toBe(204);
    expect(await live(token)).toBe(false);
  });

  it("no token text in any audit row (read through sys/audit-log)", async () => {
    const rows = await root("GET", "/v1/sys/audit-log?limit=10000");
    expect(rows.status).toBe(200);
    const text = JSON.stringify(rows.body.data);
    expect(rows.body.data.entries.length).toBeGreaterThan(50);
    expect(tokensSeen.size).toBeGreaterThan(20);
    for (const token of [...tokensSeen, ts.rootToken]) {
      expect(text.includes(token), "a token appears in the audit log").toBe(false);
      expect(text.includes(token.slice(4)), "a token's random part appears in the audit log").toBe(false);
    }
  });
});
