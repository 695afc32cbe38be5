import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startTestServer, type TestServer } from "@egide/test-server";

// ACL policies end to end: real HTTP to a real server over a real SQLite file (plus one
// PostgreSQL smoke test). Policies are written through the API, tokens are created with them
// by the root token, and every capability is checked by the status of a real KV v2 request.

type Reply = Awaited<ReturnType<typeof call>>;

let ts: TestServer;

function req(method: string, path: string, token?: string, body?: unknown, headers?: Record<string, string>): Promise<Reply> {
  return call(ts.url, method, path, {
    ...(token === undefined ? {} : { token }),
    ...(body === undefined ? {} : { body }),
    ...(headers ? { headers } : {}),
  });
}

async function writeSecret(path: string, data: Record<string, unknown>, server: TestServer = ts): Promise<void> {
  const reply = await call(server.url, "POST", `/v1/secret/data/${path}`, { token: server.rootToken, body: { data } });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
}

async function putPolicy(name: string, policy: string, server: TestServer = ts): Promise<void> {
  const reply = await call(server.url, "PUT", `/v1/sys/policies/acl/${name}`, { token: server.rootToken, body: { policy } });
  expect(reply.status, JSON.stringify(reply.body)).toBe(204);
}

async function tokenWith(policies: string[], server: TestServer = ts, extra: Record<string, unknown> = {}): Promise<string> {
  const reply = await call(server.url, "POST", "/v1/auth/token/create", { token: server.rootToken, body: { policies, ...extra } });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body.auth.client_token as string;
}

const patchHeaders = { "content-type": "application/merge-patch+json" };

beforeAll(async () => {
  ts = await startTestServer();
}, 30_000);

afterAll(async () => {
  await ts?.close();
});

describe("policy endpoints", () => {
  it("writes an HCL policy with PUT /v1/sys/policies/acl/:name and reads it back as written", async () => {
    const hcl = `# app team\npath "secret/data/hcl-app/*" {\n  capabilities = ["read", "list"]\n}\n`;
    await putPolicy("HCL-App", hcl);
    const read = await req("GET", "/v1/sys/policies/acl/hcl-app", ts.rootToken);
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual({ name: "hcl-app", policy: hcl });
    expect(typeof read.body.request_id).toBe("string");
  });

  it("writes a JSON policy with the older PUT /v1/sys/policy/:name and reads it from both endpoints", async () => {
    const json = JSON.stringify({ path: { "secret/data/json-app/*": { capabilities: ["read"] } } });
    const write = await req("PUT", "/v1/sys/policy/json-app", ts.rootToken, { policy: json });
    expect(write.status).toBe(204);
    const legacy = await req("GET", "/v1/sys/policy/json-app", ts.rootToken);
    expect(legacy.status).toBe(200);
    expect(legacy.body.name).toBe("json-app");
    expect(legacy.body.rules).toBe(json);
    expect(legacy.body.data).toEqual({ name: "json-app", rules: json });
    const acl = await req("GET", "/v1/sys/policies/acl/json-app", ts.rootToken);
    expect(acl.body.data).toEqual({ name: "json-app", policy: json });
  });

  it("accepts the deprecated `rules` field on /v1/sys/policy with a warning, and a base64 policy", async () => {
    const rules = `path "secret/data/rules-app/*" { capabilities = ["read"] }`;
    const write = await req("POST", "/v1/sys/policy/rules-app", ts.rootToken, { rules });
    expect(write.status).toBe(200);
    expect(write.body.warnings).toEqual(["'rules' is deprecated, please use 'policy' instead"]);
    expect((await req("GET", "/v1/sys/policy/rules-app", ts.rootToken)).body.rules).toBe(rules);

    const text = `path "secret/data/b64/*" { capabilities = ["read"] }`;
    await putPolicy("b64", Buffer.from(text).toString("base64"));
    expect((await req("GET", "/v1/sys/policies/acl/b64", ts.rootToken)).body.data.policy).toBe(text);
  });

  it("lists policies with LIST and ?list=true on /v1/sys/policies/acl and GET /v1/sys/policy", async () => {
    await putPolicy("listed", `path "secret/data/listed" { capabilities = ["read"] }`);
    const viaQuery = await req("GET", "/v1/sys/policies/acl?list=true", ts.rootToken);
    expect(viaQuery.status).toBe(200);
    expect(viaQuery.body.data.keys).toEqual(expect.arrayContaining(["default", "listed", "hcl-app", "json-app", "root"]));
    expect(viaQuery.body.data.keys.at(-1)).toBe("root");
    const viaList = await req("LIST", "/v1/sys/policies/acl", ts.rootToken);
    expect(viaList.status).toBe(200);
    expect(viaList.body.data.keys).toEqual(viaQuery.body.data.keys);
    const legacy = await req("GET", "/v1/sys/policy", ts.rootToken);
    expect(legacy.status).toBe(200);
    expect(legacy.body.keys).toEqual(viaQuery.body.data.keys);
    expect(legacy.body.policies).toEqual(viaQuery.body.data.keys);
  });

  it("deletes policies from both endpoints; reads then answer 404 and the names leave the list", async () => {
    await putPolicy("doomed-a", `path "x" { capabilities = ["read"] }`);
    await putPolicy("doomed-b", `path "x" { capabilities = ["read"] }`);
    expect((await req("DELETE", "/v1/sys/policies/acl/doomed-a", ts.rootToken)).status).toBe(204);
    expect((await req("DELETE", "/v1/sys/policy/doomed-b", ts.rootToken)).status).toBe(204);
    expect((await req("GET", "/v1/sys/policies/acl/doomed-a", ts.rootToken)).status).toBe(404);
    expect((await req("GET", "/v1/sys/policy/doomed-b", ts.rootToken)).status).toBe(404);
    const keys = (await req("GET", "/v1/sys/policies/acl?list=true", ts.rootToken)).body.data.keys as string[];
    expect(keys).not.toContain("doomed-a");
    expect(keys).not.toContain("doomed-b");
  });

  it("refuses invalid policies (400) and protects root and default", async () => {
    const bad = await req("PUT", "/v1/sys/policies/acl/bad", ts.rootToken, { policy: `path "secret/*" { capabilities = ["fly"] }` });
    expect(bad.status).toBe(400);
    const unparsable = await req("PUT", "/v1/sys/policies/acl/bad", ts.rootToken, { policy: `path "secret/*" {` });
    expect(unparsable.status).toBe(400);
    expect((await req("GET", "/v1/sys/policies/acl/bad", ts.rootToken)).status).toBe(404);
    expect((await req("PUT", "/v1/sys/policies/acl/root", ts.rootToken, { policy: `path "x" { capabilities = ["read"] }` })).status).toBe(
      400,
    );
    expect((await req("DELETE", "/v1/sys/policies/acl/root", ts.rootToken)).status).toBe(400);
    expect((await req("DELETE", "/v1/sys/policies/acl/default", ts.rootToken)).status).toBe(400);
  });

  it("the policy endpoints themselves need a token with the right capability", async () => {
    expect((await req("GET", "/v1/sys/policies/acl/hcl-app")).status).toBe(403);
    const plain = await tokenWith([]);
    expect((await req("GET", "/v1/sys/policies/acl/hcl-app", plain)).status).toBe(403);
    expect((await req("PUT", "/v1/sys/policies/acl/evil", plain, { policy: `path "*" { capabilities = ["sudo"] }` })).status).toBe(403);
    await putPolicy("policy-reader", `path "sys/policies/acl/*" { capabilities = ["read"] }`);
    const reader = await tokenWith(["policy-reader"]);
    expect((await req("GET", "/v1/sys/policies/acl/hcl-app", reader)).status).toBe(200);
    expect((await req("PUT", "/v1/sys/policies/acl/hcl-app", reader, { policy: `path "*" { capabilities = ["sudo"] }` })).status).toBe(403);
    expect((await req("DELETE", "/v1/sys/policies/acl/hcl-app", reader)).status).toBe(403);
  });
});

describe("capabilities on KV v2 paths", () => {
  // One policy (and token) per capability, each granting only that capability on
  // secret/data/cap/* and secret/metadata/cap/*.
  const CAPS = ["create", "read", "update", "patch", "delete", "list"] as const;
  type Cap = (typeof CAPS)[number];
  const tokens = new Map<Cap, string>();

  beforeAll(async () => {
    for (const cap of CAPS) {
      const hcl = `path "secret/data/cap/*" {\n  capabilities = ["${cap}"]\n}\npath "secret/metadata/cap/*" {\n  capabilities = ["${cap}"]\n}\n`;
      await putPolicy(`only-${cap}`, hcl);
      tokens.set(cap, await tokenWith([`only-${cap}`]));
    }
  });

  // The request each capability governs, on a fresh key for each (token, capability) pair.
  async function attempt(cap: Cap, token: string, key: string): Promise<Reply> {
    switch (cap) {
      case "create":
        return req("POST", `/v1/secret/data/cap/${key}`, token, { data: { v: "new" } });
      case "read":
        await writeSecret(`cap/${key}`, { v: "old" });
        return req("GET", `/v1/secret/data/cap/${key}`, token);
      case "update":
        await writeSecret(`cap/${key}`, { v: "old" });
        return req("POST", `/v1/secret/data/cap/${key}`, token, { data: { v: "updated" } });
      case "patch":
        await writeSecret(`cap/${key}`, { v: "old" });
        return req("PATCH", `/v1/secret/data/cap/${key}`, token, { data: { w: "patched" } }, patchHeaders);
      case "delete":
        await writeSecret(`cap/${key}`, { v: "old" });
        return req("DELETE", `/v1/secret/data/cap/${key}`, token);
      case "list":
        await writeSecret(`cap/${key}/leaf`, { v: "old" });
        return req("LIST", `/v1/secret/metadata/cap/${key}`, token);
    }
  }

  const SUCCESS: Record<Cap, number> = { create: 200, read: 200, update: 200, patch: 200, delete: 204, list: 200 };

  for (const held of CAPS) {
    it(`a token holding only "${held}" is allowed exactly the ${held} operation`, async () => {
      const token = tokens.get(held) as string;
      const results: Record<string, number> = {};
      for (const tried of CAPS) results[tried] = (await attempt(tried, token, `${held}-${tried}`)).status;
      const expected = Object.fromEntries(CAPS.map((tried) => [tried, tried === held ? SUCCESS[tried] : 403]));
      expect(results).toEqual(expected);
    });
  }

  it("the allowed operations really happened (and the denied ones did not)", async () => {
    const created = await req("GET", "/v1/secret/data/cap/create-create", ts.rootToken);
    expect(created.body.data.data).toEqual({ v: "new" });
    expect((await req("GET", "/v1/secret/data/cap/read-create", ts.rootToken)).status).toBe(404);
    expect((await req("GET", "/v1/secret/data/cap/update-update", ts.rootToken)).body.data.data).toEqual({ v: "updated" });
    expect((await req("GET", "/v1/secret/data/cap/read-update", ts.rootToken)).body.data.data).toEqual({ v: "old" });
    expect((await req("GET", "/v1/secret/data/cap/patch-patch", ts.rootToken)).body.data.data).toEqual({ v: "old", w: "patched" });
    expect((await req("GET", "/v1/secret/data/cap/read-patch", ts.rootToken)).body.data.data).toEqual({ v: "old" });
    expect((await req("GET", "/v1/secret/data/cap/delete-delete", ts.rootToken)).status).toBe(404);
    expect((await req("GET", "/v1/secret/data/cap/read-delete", ts.rootToken)).status).toBe(200);
    const listed = await req("LIST", "/v1/secret/metadata/cap/list-list", ts.rootToken);
    expect(listed.body.data.keys).toEqual(["leaf"]);
  });

  it("create without update cannot overwrite an existing key; update without create cannot make a new one", async () => {
    await writeSecret("cap/existing", { v: "keep" });
    expect((await req("POST", "/v1/secret/data/cap/existing", tokens.get("create"), { data: { v: "overwrite" } })).status).toBe(403);
    expect((await req("POST", "/v1/secret/data/cap/brand-new", tokens.get("update"), { data: { v: "x" } })).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/cap/existing", ts.rootToken)).body.data.data).toEqual({ v: "keep" });
    expect((await req("GET", "/v1/secret/data/cap/brand-new", ts.rootToken)).status).toBe(404);
  });

  it("a token with only the default policy is denied every KV operation (deny by default) but may look itself up", async () => {
    const token = await tokenWith([]);
    const lookup = await req("GET", "/v1/auth/token/lookup-self", token);
    expect(lookup.status).toBe(200);
    expect(lookup.body.data.policies).toEqual(["default"]);
    await writeSecret("default-only/x", { v: 1 });
    expect((await req("GET", "/v1/secret/data/default-only/x", token)).status).toBe(403);
    expect((await req("POST", "/v1/secret/data/default-only/x", token, { data: { v: 2 } })).status).toBe(403);
    expect((await req("POST", "/v1/secret/data/default-only/new", token, { data: { v: 2 } })).status).toBe(403);
    expect((await req("LIST", "/v1/secret/metadata/default-only", token)).status).toBe(403);
    expect((await req("DELETE", "/v1/secret/data/default-only/x", token)).status).toBe(403);
    expect((await req("GET", "/v1/secret/metadata/default-only/x", token)).status).toBe(403);
    expect((await req("GET", "/v1/secret/config", token)).status).toBe(403);
    expect((await req("GET", "/v1/sys/mounts", token)).status).toBe(403);
    // and none of it happened
    expect((await req("GET", "/v1/secret/data/default-only/x", ts.rootToken)).body.data.data).toEqual({ v: 1 });
  });

  it("no token, an unknown token and a malformed token are all 403 on KV", async () => {
    expect((await req("GET", "/v1/secret/data/cap/existing")).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/cap/existing", "egs.not-a-real-token")).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/cap/existing", "x".repeat(300))).status).toBe(403);
  });
});

describe("path matching", () => {
  it("a glob secret/data/app/* covers everything below app/ and nothing beside it", async () => {
    await putPolicy("glob-app", `path "secret/data/app/*" { capabilities = ["read"] }`);
    const token = await tokenWith(["glob-app"]);
    for (const path of ["app/a", "app/a/b/c", "apps", "other/a", "app"]) await writeSecret(path, { p: path });
    expect((await req("GET", "/v1/secret/data/app/a", token)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/app/a/b/c", token)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/apps", token)).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/app", token)).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/other/a", token)).status).toBe(403);
    expect((await req("POST", "/v1/secret/data/app/a", token, { data: { p: "x" } })).status).toBe(403);
  });

  it("a glob without a slash (secret/data/app*) also covers secret/data/apps", async () => {
    await putPolicy("glob-app-star", `path "secret/data/app*" { capabilities = ["read"] }`);
    const token = await tokenWith(["glob-app-star"]);
    expect((await req("GET", "/v1/secret/data/apps", token)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/app", token)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/app/a/b/c", token)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/other/a", token)).status).toBe(403);
  });

  it("a + segment (secret/data/+/config) matches exactly one segment", async () => {
    await putPolicy("plus-config", `path "secret/data/+/config" { capabilities = ["read", "create", "update"] }`);
    const token = await tokenWith(["plus-config"]);
    for (const path of ["team1/config", "team2/config", "team1/other", "a/b/config", "config"]) await writeSecret(path, { p: path });
    expect((await req("GET", "/v1/secret/data/team1/config", token)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/team2/config", token)).status).toBe(200);
    expect((await req("POST", "/v1/secret/data/team3/config", token, { data: { new: true } })).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/team1/other", token)).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/a/b/config", token)).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/config", token)).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/team1/config/extra", token)).status).toBe(403);
  });

  it("+ combined with a trailing glob (secret/data/+/shared/*)", async () => {
    await putPolicy("plus-glob", `path "secret/data/+/shared/*" { capabilities = ["read"] }`);
    const token = await tokenWith(["plus-glob"]);
    await writeSecret("t1/shared/a/b", { v: 1 });
    await writeSecret("t1/private/a", { v: 1 });
    expect((await req("GET", "/v1/secret/data/t1/shared/a/b", token)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/t1/private/a", token)).status).toBe(403);
  });

  it("an exact path wins over a glob (no union between patterns)", async () => {
    await putPolicy(
      "exact-prio",
      `path "secret/data/prio/*" { capabilities = ["read", "create", "update"] }
path "secret/data/prio/special" { capabilities = ["update"] }`,
    );
    const token = await tokenWith(["exact-prio"]);
    await writeSecret("prio/special", { v: "special" });
    await writeSecret("prio/normal", { v: "normal" });
    expect((await req("GET", "/v1/secret/data/prio/normal", token)).status).toBe(200);
    // the exact rule has no read: the glob's read does not apply
    expect((await req("GET", "/v1/secret/data/prio/special", token)).status).toBe(403);
    expect((await req("POST", "/v1/secret/data/prio/special", token, { data: { v: "changed" } })).status).toBe(200);
  });

  it("the longer glob wins over the shorter one", async () => {
    await putPolicy(
      "glob-prio",
      `path "secret/data/nest/*" { capabilities = ["read"] }
path "secret/data/nest/inner/*" { capabilities = ["create", "update"] }`,
    );
    const token = await tokenWith(["glob-prio"]);
    await writeSecret("nest/a", { v: 1 });
    await writeSecret("nest/inner/a", { v: 1 });
    expect((await req("GET", "/v1/secret/data/nest/a", token)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/nest/inner/a", token)).status).toBe(403);
    expect((await req("POST", "/v1/secret/data/nest/inner/a", token, { data: { v: 2 } })).status).toBe(200);
    expect((await req("POST", "/v1/secret/data/nest/a", token, { data: { v: 2 } })).status).toBe(403);
  });

  it("a + rule whose wildcard comes later beats a shorter glob", async () => {
    await putPolicy(
      "plus-prio",
      `path "secret/data/org/*" { capabilities = ["read"] }
path "secret/data/org/+/locked" { capabilities = ["deny"] }`,
    );
    const token = await tokenWith(["plus-prio"]);
    await writeSecret("org/x/locked", { v: 1 });
    await writeSecret("org/x/open", { v: 1 });
    expect((await req("GET", "/v1/secret/data/org/x/open", token)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/org/x/locked", token)).status).toBe(403);
  });

  it("deny in one policy overrides grants of the same path in another policy", async () => {
    await putPolicy("shared-read", `path "secret/data/shared/*" { capabilities = ["read", "create", "update"] }`);
    await putPolicy("shared-deny", `path "secret/data/shared/*" { capabilities = ["deny"] }`);
    await putPolicy("shared-top-deny", `path "secret/data/shared/top" { capabilities = ["deny"] }`);
    await writeSecret("shared/top", { v: 1 });
    await writeSecret("shared/other", { v: 1 });
    const readOnly = await tokenWith(["shared-read"]);
    const both = await tokenWith(["shared-read", "shared-deny"]);
    const topDenied = await tokenWith(["shared-read", "shared-top-deny"]);
    expect((await req("GET", "/v1/secret/data/shared/top", readOnly)).status).toBe(200);
    expect((await req("GET", "/v1/secret/data/shared/top", both)).status).toBe(403);
    expect((await req("POST", "/v1/secret/data/shared/new", both, { data: { v: 1 } })).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/shared/top", topDenied)).status).toBe(403);
    expect((await req("GET", "/v1/secret/data/shared/other", topDenied)).status).toBe(200);
  });

  it("deny alongside other capabilities in the same stanza denies everything", async () => {
    await putPolicy("deny-mixed", `path "secret/data/mixed/*" { capabilities = ["read", "deny", "update"] }`);
    const token = await tokenWith(["deny-mixed"]);
    await writeSecret("mixed/a", { v: 1 });
    expect((await req("GET", "/v1/secret/data/mixed/a", token)).status).toBe(403);
    expect((await req("POST", "/v1/secret/data/mixed/a", token, { data: { v: 2 } })).status).toBe(403);
  });

  it("list on secret/metadata/<folder> is granted by a rule written without the trailing slash", async () => {
    await putPolicy("list-noslash", `path "secret/metadata/folder" { capabilities = ["list"] }`);
    const token = await tokenWith(["list-noslash"]);
    await writeSecret("folder/a", { v: 1 });
    const listed = await req("LIST", "/v1/secret/metadata/folder", token);
    expect(listed.status).toBe(200);
    expect(listed.body.data.keys).toEqual(["a"]);
    expect((await req("GET", "/v1/secret/metadata/folder/a", token)).status).toBe(403);
  });
});

describe("sudo-protected endpoints", () => {
  async function unseal(): Promise<void> {
    for (const key of ts.keys) {
      const reply = await req("PUT", "/v1/sys/unseal", undefined, { key: key.toString("hex") });
      expect(reply.status).toBe(200);
    }
    expect((await req("GET", "/v1/sys/seal-status")).body.sealed).toBe(false);
  }

  it("PUT /v1/sys/seal needs update and sudo", async () => {
    await putPolicy("seal-update", `path "sys/seal" { capabilities = ["update"] }`);
    await putPolicy("seal-sudo-only", `path "sys/seal" { capabilities = ["sudo"] }`);
    await putPolicy("seal-sudo", `path "sys/seal" { capabilities = ["update", "sudo"] }`);
    await putPolicy("seal-sudo-denied", `path "sys/*" { capabilities = ["deny"] }`);
    const update = await tokenWith(["seal-update"]);
    const sudoOnly = await tokenWith(["seal-sudo-only"]);
    const sudoDenied = await tokenWith(["seal-sudo", "seal-sudo-denied"]);
    const sudo = await tokenWith(["seal-sudo"]);
    expect((await req("PUT", "/v1/sys/seal", update)).status).toBe(403);
    expect((await req("PUT", "/v1/sys/seal", sudoOnly)).status).toBe(403);
    expect((await req("PUT", "/v1/sys/seal", await tokenWith([]))).status).toBe(403);
    expect((await req("GET", "/v1/sys/seal-status")).body.sealed).toBe(false);
    // the exact "sys/seal" rule wins over the "sys/*" deny, as in Vault
    expect((await req("PUT", "/v1/sys/seal", sudoDenied)).status).toBe(204);
    await unseal();
    expect((await req("PUT", "/v1/sys/seal", sudo)).status).toBe(204);
    expect((await req("GET", "/v1/sys/seal-status")).body.sealed).toBe(true);
    expect((await req("GET", "/v1/secret/data/app/a", ts.rootToken)).status).toBe(503);
    await unseal();
    expect((await req("GET", "/v1/secret/data/app/a", ts.rootToken)).status).toBe(200);
  });

  it("POST /v1/sys/rotate needs update and sudo", async () => {
    await putPolicy("rotate-update", `path "sys/rotate" { capabilities = ["update"] }`);
    await putPolicy("rotate-sudo", `path "sys/rotate" { capabilities = ["update", "sudo"] }`);
    await putPolicy("rotate-deny", `path "sys/rotate" { capabilities = ["deny"] }`);
    const term = async () => (await req("GET", "/v1/sys/key-status", ts.rootToken)).body.data.term as number;
    const before = await term();
    expect((await req("POST", "/v1/sys/rotate", await tokenWith(["rotate-update"]))).status).toBe(403);
    expect((await req("POST", "/v1/sys/rotate", await tokenWith(["rotate-sudo", "rotate-deny"]))).status).toBe(403);
    expect(await term()).toBe(before);
    expect((await req("POST", "/v1/sys/rotate", await tokenWith(["rotate-sudo"]))).status).toBe(204);
    expect(await term()).toBe(before + 1);
  });
});

describe("policy changes", () => {
  it("take effect at once on the local instance: grant, revoke by deny, grant again, delete", async () => {
    await writeSecret("live/a", { v: 1 });
    await putPolicy("live", `path "secret/data/live/*" { capabilities = ["read"] }`);
    const token = await tokenWith(["live"]);
    expect((await req("GET", "/v1/secret/data/live/a", token)).status).toBe(200);
    await putPolicy("live", `path "secret/data/live/*" { capabilities = ["deny"] }`);
    expect((await req("GET", "/v1/secret/data/live/a", token)).status).toBe(403);
    await putPolicy("live", `path "secret/data/live/*" { capabilities = ["read", "create", "update"] }`);
    expect((await req("GET", "/v1/secret/data/live/a", token)).status).toBe(200);
    expect((await req("POST", "/v1/secret/data/live/a", token, { data: { v: 2 } })).status).toBe(200);
    expect((await req("DELETE", "/v1/sys/policies/acl/live", ts.rootToken)).status).toBe(204);
    expect((await req("GET", "/v1/secret/data/live/a", token)).status).toBe(403);
    // writing it again (through the older endpoint) restores the access of existing tokens
    expect(
      (await req("PUT", "/v1/sys/policy/live", ts.rootToken, { policy: `path "secret/data/live/*" { capabilities = ["read"] }` })).status,
    ).toBe(204);
    expect((await req("GET", "/v1/secret/data/live/a", token)).status).toBe(200);
  });

  it("a change to the default policy applies to every token at once", async () => {
    await writeSecret("via-default/a", { v: 1 });
    const token = await tokenWith([]);
    expect((await req("GET", "/v1/secret/data/via-default/a", token)).status).toBe(403);
    const original = (await req("GET", "/v1/sys/policies/acl/default", ts.rootToken)).body.data.policy as string;
    await putPolicy("default", `${original}\npath "secret/data/via-default/*" { capabilities = ["read"] }\n`);
    try {
      expect((await req("GET", "/v1/secret/data/via-default/a", token)).status).toBe(200);
    } finally {
      await putPolicy("default", original);
    }
    expect((await req("GET", "/v1/secret/data/via-default/a", token)).status).toBe(403);
  });

  it("a token created with a policy that does not exist yet gains access when it is written", async () => {
    await writeSecret("later/a", { v: 1 });
    const token = await tokenWith(["not-yet"]);
    expect((await req("GET", "/v1/secret/data/later/a", token)).status).toBe(403);
    await putPolicy("not-yet", `path "secret/data/later/*" { capabilities = ["read"] }`);
    expect((await req("GET", "/v1/secret/data/later/a", token)).status).toBe(200);
  });
});

describe("PostgreSQL smoke", () => {
  it("policies written over HTTP grant and deny on a PostgreSQL-backed server", async () => {
    const pgServer = await startTestServer({ storage: "postgresql" });
    try {
      await writeSecret("pg/app/a", { v: 1 }, pgServer);
      await writeSecret("pg/other/a", { v: 1 }, pgServer);
      await putPolicy(
        "pg-app",
        `path "secret/data/pg/app/*" { capabilities = ["read"] }\npath "secret/data/pg/+/a" { capabilities = ["update"] }`,
        pgServer,
      );
      const token = await tokenWith(["pg-app"], pgServer);
      const get = (path: string) => call(pgServer.url, "GET", `/v1/secret/data/${path}`, { token });
      expect((await get("pg/app/a")).status).toBe(200);
      expect((await get("pg/other/a")).status).toBe(403);
      expect((await call(pgServer.url, "POST", "/v1/secret/data/pg/other/a", { token, body: { data: { v: 2 } } })).status).toBe(200);
      await putPolicy("pg-app", `path "secret/data/pg/app/*" { capabilities = ["deny"] }`, pgServer);
      expect((await get("pg/app/a")).status).toBe(403);
      const json = JSON.stringify({ path: { "secret/data/pg/other/*": { capabilities: ["read"] } } });
      expect(
        (await call(pgServer.url, "PUT", "/v1/sys/policy/pg-json", { token: pgServer.rootToken, body: { policy: json } })).status,
      ).toBe(204);
      const token2 = await tokenWith(["pg-json"], pgServer);
      expect((await call(pgServer.url, "GET", "/v1/secret/data/pg/other/a", { token: token2 })).body.data.data).toEqual({ v: 2 });
      expect((await call(pgServer.url, "GET", "/v1/secret/data/pg/app/a", { token: token2 })).status).toBe(403);
    } finally {
      await pgServer.close();
    }
  }, 30_000);
});
