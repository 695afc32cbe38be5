import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type JsonBody, startTestServer, type TestServer } from "@egide/test-server";
import { TOKEN_LOOKUP_KEYS } from "./support/vault-response-keys.js";

// Token auth end to end: real HTTP to a real server over a real SQLite file, real clocks (the
// expiry tests really wait).

type Reply = Awaited<ReturnType<typeof call>>;

let ts: TestServer;

function req(method: string, path: string, token?: string, body?: unknown, headers?: Record<string, string>): Promise<Reply> {
  return call(ts.url, method, path, {
    ...(token === undefined ? {} : { token }),
    ...(body === undefined ? {} : { body }),
    ...(headers ? { headers } : {}),
  });
}

async function create(
  body: Record<string, unknown>,
  token: string = ts.rootToken,
): Promise<{ token: string; accessor: string; auth: JsonBody }> {
  const reply = await req("POST", "/v1/auth/token/create", token, body);
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return { token: reply.body.auth.client_token, accessor: reply.body.auth.accessor, auth: reply.body.auth };
}

async function putPolicy(name: string, policy: string): Promise<void> {
  const reply = await req("PUT", `/v1/sys/policies/acl/${name}`, ts.rootToken, { policy });
  expect(reply.status, JSON.stringify(reply.body)).toBe(204);
}

/** Whether `token` is live (lookup-self answers 200; 403 once revoked or expired). */
async function alive(token: string): Promise<boolean> {
  const status = (await req("GET", "/v1/auth/token/lookup-self", token)).status;
  expect([200, 403]).toContain(status);
  return status === 200;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowSeconds = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  ts = await startTestServer();
  await putPolicy(
    "creator",
    `path "auth/token/create" { capabilities = ["update"] }\npath "auth/token/lookup" { capabilities = ["update"] }`,
  );
  await putPolicy("kv-a", `path "secret/data/a/*" { capabilities = ["read", "create", "update"] }`);
  await putPolicy("kv-b", `path "secret/data/b/*" { capabilities = ["read", "create", "update"] }`);
  await putPolicy("creator-sudo", `path "auth/token/create" { capabilities = ["update", "sudo"] }`);
  await putPolicy("revoker", `path "auth/token/revoke" { capabilities = ["update"] }`);
  const seed = await req("POST", "/v1/secret/data/a/x", ts.rootToken, { data: { v: "a" } });
  expect(seed.status).toBe(200);
}, 30_000);

afterAll(async () => {
  await ts?.close();
});

describe("token create", () => {
  it("answers Vault's auth block with the ttl, policies, display name and metadata asked for", async () => {
    const before = Date.now();
    const reply = await req("POST", "/v1/auth/token/create", ts.rootToken, {
      policies: ["kv-a", "KV-B"],
      ttl: "1h",
      display_name: "ci-runner",
      meta: { team: "platform", owner: "alice" },
    });
    expect(reply.status).toBe(200);
    expect(typeof reply.body.request_id).toBe("string");
    expect(reply.body.data).toBeNull();
    const auth = reply.body.auth;
    expect(auth.client_token).toMatch(/^egs\.[A-Za-z0-9_-]{43}$/);
    expect(typeof auth.accessor).toBe("string");
    expect(auth.accessor).not.toBe(auth.client_token);
    expect(auth.policies).toEqual(["default", "kv-a", "kv-b"]);
    expect(auth.token_policies).toEqual(["default", "kv-a", "kv-b"]);
    expect(auth.metadata).toEqual({ team: "platform", owner: "alice" });
    expect(auth.lease_duration).toBeGreaterThanOrEqual(3599);
    expect(auth.lease_duration).toBeLessThanOrEqual(3600);
    expect(auth.renewable).toBe(true);
    expect(auth.orphan).toBe(false);
    expect(auth.token_type).toBe("service");

    const self = await req("GET", "/v1/auth/token/lookup-self", auth.client_token);
    expect(self.status).toBe(200);
    expect(self.body.data.display_name).toBe("token-ci-runner");
    expect(self.body.data.meta).toEqual({ team: "platform", owner: "alice" });
    expect(self.body.data.creation_ttl).toBe(3600);
    const expires = Date.parse(self.body.data.expire_time);
    expect(expires).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
  });

  it("accepts ttl as a number of seconds and as a numeric string", async () => {
    const n = await create({ ttl: 120 });
    expect(n.auth.lease_duration).toBeGreaterThanOrEqual(119);
    expect(n.auth.lease_duration).toBeLessThanOrEqual(120);
    const s = await create({ ttl: "90" });
    expect(s.auth.lease_duration).toBeGreaterThanOrEqual(89);
    expect(s.auth.lease_duration).toBeLessThanOrEqual(90);
    expect((await req("POST", "/v1/auth/token/create", ts.rootToken, { ttl: "soon" })).status).toBe(400);
  });

  it("without policies the child of the root token gets only default; no_default_policy drops it", async () => {
    const plain = await create({});
    expect(plain.auth.policies).toEqual(["default"]);
    const noDefault = await create({ policies: ["kv-a"], no_default_policy: true });
    expect(noDefault.auth.policies).toEqual(["kv-a"]);
    // without default it cannot even look itself up
    expect((await req("GET", "/v1/auth/token/lookup-self", noDefault.token)).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/a/x", noDefault.token)).status).toBe(200);
  });

  it("a non-root caller can only give policies it holds (the subset rule)", async () => {
    const parent = await create({ policies: ["creator", "kv-a"] });
    const subset = await create({ policies: ["kv-a"] }, parent.token);
    expect(subset.auth.policies).toEqual(["default", "kv-a"]);
    expect((await req("GET", "/v1/secret/data/a/x", subset.token)).status).toBe(200);

    const extra = await req("POST", "/v1/auth/token/create", parent.token, { policies: ["kv-a", "kv-b"] });
    expect(extra.status).toBe(400);
    expect(extra.body.errors[0]).toContain("kv-b");
    const rootAsk = await req("POST", "/v1/auth/token/create", parent.token, { policies: ["root"] });
    expect([400, 403]).toContain(rootAsk.status);

    // without policies it inherits the caller's
    const inherited = await create({}, parent.token);
    expect(inherited.auth.policies).toEqual(["creator", "default", "kv-a"]);
  });

  it("sudo on auth/token/create lifts the subset rule but never grants root", async () => {
    const parent = await create({ policies: ["creator-sudo"] });
    const child = await create({ policies: ["kv-b"] }, parent.token);
    expect(child.auth.policies).toEqual(["default", "kv-b"]);
    // Vault: 400 "root tokens may not be created without parent token being root"
    expect((await req("POST", "/v1/auth/token/create", parent.token, { policies: ["root"] })).status).toBe(400);
  });

  it("no_parent without root or sudo is refused (400), as in Vault, rather than silently ignored", async () => {
    const parent = await create({ policies: ["creator", "kv-a"] });
    const reply = await req("POST", "/v1/auth/token/create", parent.token, { policies: ["kv-a"], no_parent: true });
    expect({ status: reply.status, orphan: reply.body?.auth?.orphan }).toEqual({ status: 400, orphan: undefined });
  });

  it("a token without create capability cannot create tokens", async () => {
    const plain = await create({ policies: ["kv-a"] });
    expect((await req("POST", "/v1/auth/token/create", plain.token, { policies: ["kv-a"] })).status).toBe(403);
    expect((await req("POST", "/v1/auth/token/create", undefined, {})).status).toBe(403);
  });

  it("refuses malformed meta and policies", async () => {
    expect((await req("POST", "/v1/auth/token/create", ts.rootToken, { meta: { n: 1 } })).status).toBe(400);
    expect((await req("POST", "/v1/auth/token/create", ts.rootToken, { policies: [1] })).status).toBe(400);
  });
});

describe("token lookup", () => {
  it("lookup-self answers Vault's data shape (accessor, policies, ttl, id, ...)", async () => {
    const { token, accessor } = await create({ policies: ["kv-a"], ttl: "30m", display_name: "shape", meta: { k: "v" } });
    const reply = await req("GET", "/v1/auth/token/lookup-self", token);
    expect(reply.status).toBe(200);
    expect(typeof reply.body.request_id).toBe("string");
    const data = reply.body.data;
    expect(Object.keys(data).sort()).toEqual(expect.arrayContaining([...TOKEN_LOOKUP_KEYS]));
    expect(data.id).toBe(token);
    expect(data.accessor).toBe(accessor);
    expect(data.policies).toEqual(["default", "kv-a"]);
    expect(data.display_name).toBe("token-shape");
    expect(data.meta).toEqual({ k: "v" });
    expect(data.creation_ttl).toBe(1800);
    expect(data.ttl).toBeGreaterThanOrEqual(1798);
    expect(data.ttl).toBeLessThanOrEqual(1800);
    expect(Math.abs(data.creation_time - nowSeconds())).toBeLessThanOrEqual(2);
    expect(Number.isNaN(Date.parse(data.issue_time))).toBe(false);
    expect(data.num_uses).toBe(0);
    expect(data.orphan).toBe(false);
    expect(data.path).toBe("auth/token/create");
    expect(data.renewable).toBe(true);
    expect(data.type).toBe("service");
  });

  it("lookup-self: explicit_max_ttl is 0 when none was given, as in Vault", async () => {
    const { token } = await create({ ttl: "30m" });
    const data = (await req("GET", "/v1/auth/token/lookup-self", token)).body.data;
    expect(data.explicit_max_ttl).toBe(0);
  });

  it("lookup-self: explicit_max_ttl is the one given", async () => {
    const { token } = await create({ ttl: "30m", explicit_max_ttl: "1h" });
    const data = (await req("GET", "/v1/auth/token/lookup-self", token)).body.data;
    expect(data.explicit_max_ttl).toBe(3600);
  });

  it("lookup-self of the root token: root policy, no expiry, orphan", async () => {
    const data = (await req("GET", "/v1/auth/token/lookup-self", ts.rootToken)).body.data;
    expect(data.policies).toEqual(["root"]);
    expect(data.ttl).toBe(0);
    expect(data.expire_time).toBeNull();
    expect(data.orphan).toBe(true);
    expect(data.path).toBe("auth/token/root");
    expect(data.id).toBe(ts.rootToken);
  });

  it("lookup of another token needs update on auth/token/lookup and answers its id, as Vault does", async () => {
    const target = await create({ policies: ["kv-b"], display_name: "target" });
    const byRoot = await req("POST", "/v1/auth/token/lookup", ts.rootToken, { token: target.token });
    expect(byRoot.status).toBe(200);
    expect(byRoot.body.data.accessor).toBe(target.accessor);
    expect(byRoot.body.data.policies).toEqual(["default", "kv-b"]);
    expect(byRoot.body.data.display_name).toBe("token-target");
    // Vault answers the token's id in the lookup data (a reported bug had it missing).
    expect(byRoot.body.data.id).toBe(target.token);

    const creator = await create({ policies: ["creator"] });
    expect((await req("POST", "/v1/auth/token/lookup", creator.token, { token: target.token })).status).toBe(200);
    const plain = await create({});
    expect((await req("POST", "/v1/auth/token/lookup", plain.token, { token: target.token })).status).toBe(403);

    expect((await req("POST", "/v1/auth/token/lookup", ts.rootToken, {})).status).toBe(400);
  });

  it('lookup of an unknown token answers 403 "bad token", as Vault does', async () => {
    const reply = await req("POST", "/v1/auth/token/lookup", ts.rootToken, { token: "egs.nope" });
    expect({ status: reply.status, errors: reply.body?.errors }).toEqual({ status: 403, errors: ["bad token"] });
  });
});

describe("token headers", () => {
  it("X-Vault-Token, X-Egide-Token and Authorization: Bearer all authenticate", async () => {
    const { token, accessor } = await create({ policies: ["kv-a"] });
    const variants: Array<Record<string, string>> = [
      { "x-vault-token": token },
      { "x-egide-token": token },
      { authorization: `Bearer ${token}` },
      { authorization: `bearer ${token}` },
    ];
    for (const headers of variants) {
      const self = await req("GET", "/v1/auth/token/lookup-self", undefined, undefined, headers);
      expect(self.status, JSON.stringify(headers)).toBe(200);
      expect(self.body.data.accessor).toBe(accessor);
      expect((await req("GET", "/v1/secret/data/a/x", undefined, undefined, headers)).status).toBe(200);
    }
  });

  it("a wrong token in any header is 403, and X-Vault-Token takes precedence over the others", async () => {
    const { token } = await create({ policies: ["kv-a"] });
    const wrong: Array<Record<string, string>> = [
      { "x-vault-token": "egs.wrong" },
      { "x-egide-token": "egs.wrong" },
      { authorization: "Bearer egs.wrong" },
      { authorization: `Basic ${token}` },
    ];
    for (const headers of wrong) {
      expect((await req("GET", "/v1/secret/data/a/x", undefined, undefined, headers)).status, JSON.stringify(headers)).toBe(403);
    }
    expect(
      (await req("GET", "/v1/secret/data/a/x", undefined, undefined, { "x-vault-token": "egs.wrong", authorization: `Bearer ${token}` }))
        .status,
    ).toBe(403);
    expect(
      (await req("GET", "/v1/secret/data/a/x", undefined, undefined, { "x-vault-token": token, authorization: "Bearer egs.wrong" })).status,
    ).toBe(200);
  });
});

describe("token renew", () => {
  it("renew-self extends the ttl by the increment, and by the creation ttl without one", async () => {
    const { token } = await create({ ttl: "60s" });
    const renewed = await req("POST", "/v1/auth/token/renew-self", token, { increment: "1h" });
    expect(renewed.status).toBe(200);
    expect(renewed.body.auth.client_token).toBe(token);
    expect(renewed.body.auth.lease_duration).toBeGreaterThanOrEqual(3599);
    expect(renewed.body.auth.lease_duration).toBeLessThanOrEqual(3600);
    expect((await req("GET", "/v1/auth/token/lookup-self", token)).body.data.ttl).toBeGreaterThanOrEqual(3598);
    const again = await req("PUT", "/v1/auth/token/renew-self", token, {});
    expect(again.status).toBe(200);
    expect(again.body.auth.lease_duration).toBeGreaterThanOrEqual(59);
    expect(again.body.auth.lease_duration).toBeLessThanOrEqual(60);
  });

  it("renew-self never goes past explicit_max_ttl", async () => {
    const { token } = await create({ ttl: "60s", explicit_max_ttl: "120s" });
    const renewed = await req("POST", "/v1/auth/token/renew-self", token, { increment: "1h" });
    expect(renewed.status).toBe(200);
    expect(renewed.body.auth.lease_duration).toBeGreaterThanOrEqual(118);
    expect(renewed.body.auth.lease_duration).toBeLessThanOrEqual(120);
  });

  it("a non-renewable token cannot renew itself", async () => {
    const { token } = await create({ ttl: "60s", renewable: false });
    const renewed = await req("POST", "/v1/auth/token/renew-self", token, { increment: "1h" });
    expect(renewed.status).toBe(400);
    expect((await req("GET", "/v1/auth/token/lookup-self", token)).body.data.ttl).toBeLessThanOrEqual(60);
  });
});

describe("token revoke", () => {
  it("revoke revokes the token and its whole subtree, and nothing else", async () => {
    const parent = await create({ policies: ["creator", "kv-a"] });
    const child = await create({ policies: ["creator", "kv-a"] }, parent.token);
    const grandchild = await create({ policies: ["kv-a"] }, child.token);
    const sibling = await create({ policies: ["kv-a"] });
    const orphanish = await create({ policies: ["kv-a"], no_parent: true });
    expect(orphanish.auth.orphan).toBe(true);
    for (const t of [parent, child, grandchild, sibling]) expect(await alive(t.token)).toBe(true);

    expect((await req("POST", "/v1/auth/token/revoke", ts.rootToken, { token: parent.token })).status).toBe(204);
    expect(await alive(parent.token)).toBe(false);
    expect(await alive(child.token)).toBe(false);
    expect(await alive(grandchild.token)).toBe(false);
    expect((await req("GET", "/v1/secret/data/a/x", grandchild.token)).status).toBe(403);
    expect(await alive(sibling.token)).toBe(true);
    expect(await alive(orphanish.token)).toBe(true);
    expect(await alive(ts.rootToken)).toBe(true);
    // revoking again, or an unknown token, is not an error (Vault answers 204)
    expect((await req("POST", "/v1/auth/token/revoke", ts.rootToken, { token: parent.token })).status).toBe(204);
  });

  it("revoke needs update on auth/token/revoke", async () => {
    const victim = await create({ policies: ["kv-a"] });
    const plain = await create({});
    expect((await req("POST", "/v1/auth/token/revoke", plain.token, { token: victim.token })).status).toBe(403);
    expect(await alive(victim.token)).toBe(true);
    const revoker = await create({ policies: ["revoker"] });
    expect((await req("PUT", "/v1/auth/token/revoke", revoker.token, { token: victim.token })).status).toBe(204);
    expect(await alive(victim.token)).toBe(false);
  });

  it("revoke-self revokes the caller and its children", async () => {
    const self = await create({ policies: ["creator", "kv-a"] });
    const child = await create({ policies: ["kv-a"] }, self.token);
    expect((await req("POST", "/v1/auth/token/revoke-self", self.token)).status).toBe(204);
    expect(await alive(self.token)).toBe(false);
    expect(await alive(child.token)).toBe(false);
    expect((await req("POST", "/v1/auth/token/revoke-self", self.token)).status).toBe(403);
  });
});

// These really wait; they run concurrently so the waits overlap.
describe.concurrent("token expiry (real waits)", () => {
  it("renewing keeps a short-lived token alive past its original expiry", async () => {
    const { token } = await create({ ttl: "2s" });
    await sleep(1000);
    expect((await req("POST", "/v1/auth/token/renew-self", token, { increment: "10s" })).status).toBe(200);
    await sleep(1600);
    expect(await alive(token)).toBe(true);
  });

  it("a token with ttl 2s works, then is refused (403) everywhere once expired", async () => {
    const { token } = await create({ policies: ["kv-a"], ttl: "2s" });
    expect((await req("GET", "/v1/secret/data/a/x", token)).status).toBe(200);
    const ttl = (await req("GET", "/v1/auth/token/lookup-self", token)).body.data.ttl;
    expect(ttl).toBeGreaterThanOrEqual(1);
    expect(ttl).toBeLessThanOrEqual(2);
    await sleep(2200);
    expect((await req("GET", "/v1/secret/data/a/x", token)).status).toBe(403);
    expect((await req("GET", "/v1/auth/token/lookup-self", token)).status).toBe(403);
    expect((await req("POST", "/v1/auth/token/renew-self", token, {})).status).toBe(403);
    expect((await req("POST", "/v1/secret/data/a/y", token, { data: { v: 1 } })).status).toBe(403);
    expect((await req("POST", "/v1/auth/token/lookup", ts.rootToken, { token })).status).not.toBe(200);
  });

  it("the children of a token are revoked when it expires (Vault revokes the tree of an expired token)", async () => {
    const parent = await create({ policies: ["creator", "kv-a"], ttl: "2s" });
    const child = await create({ policies: ["kv-a"], ttl: "1h" }, parent.token);
    expect(await alive(child.token)).toBe(true);
    await sleep(2200);
    expect(await alive(parent.token)).toBe(false);
    expect(await alive(child.token)).toBe(false);
  });
});
