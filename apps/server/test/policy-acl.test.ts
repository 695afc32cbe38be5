import { describe, expect, it } from "vitest";
import { Acl } from "../src/policy/acl.js";
import { parsePolicy } from "../src/policy/parse-policy.js";
import { CAPABILITIES } from "../src/policy/policy.js";
import type { Capability } from "../src/server-context.js";
import { aclPolicy, aclPolicy2 } from "./support/vault-acl-policies.js";

let counter = 0;
/** The ACL of policies given as HCL (or JSON) texts. */
async function aclOf(...texts: string[]): Promise<Acl> {
  return Acl.fromPolicies(await Promise.all(texts.map((text) => parsePolicy(`p${counter++}`, text))));
}

/** The capabilities `allows` grants on `path`, in CAPABILITIES order. */
function granted(acl: Acl, path: string): Capability[] {
  return CAPABILITIES.filter((capability) => acl.allows(path, capability));
}

const ALL: Capability[] = ["create", "read", "update", "patch", "delete", "list", "sudo"];

describe("Acl: capabilities of a single rule", () => {
  it.each(ALL)("grants %s alone when only it is listed", async (capability) => {
    const acl = await aclOf(`path "secret/x" { capabilities = ["${capability}"] }`);
    expect(granted(acl, "secret/x")).toEqual([capability]);
    expect(acl.capabilities("secret/x")).toEqual(new Set([capability]));
  });

  it("grants every listed capability and nothing else", async () => {
    const acl = await aclOf(`path "secret/x" { capabilities = ["read", "list", "sudo"] }`);
    expect(granted(acl, "secret/x")).toEqual(["read", "list", "sudo"]);
    for (const capability of ["create", "update", "patch", "delete"] as const) expect(acl.allows("secret/x", capability)).toBe(false);
  });

  it("denies everything on a deny rule, and capabilities() says deny", async () => {
    const acl = await aclOf(`path "secret/x" { capabilities = ["deny"] }`);
    expect(granted(acl, "secret/x")).toEqual([]);
    expect(acl.capabilities("secret/x")).toEqual(new Set(["deny"]));
  });

  it("never answers true for the deny capability itself", async () => {
    const acl = await aclOf(`path "secret/x" { capabilities = ["deny"] }`);
    expect(acl.allows("secret/x", "deny")).toBe(false);
    expect(Acl.root().allows("secret/x", "deny")).toBe(false);
  });

  it("ignores a leading slash in the path checked", async () => {
    const acl = await aclOf(`path "secret/x" { capabilities = ["read"] }`);
    expect(acl.allows("/secret/x", "read")).toBe(true);
    expect(acl.allows("//secret/x", "read")).toBe(true);
  });
});

describe("Acl: deny by default", () => {
  it("denies a path no rule matches", async () => {
    const acl = await aclOf(`path "secret/x" { capabilities = ["read"] }`);
    expect(granted(acl, "secret/y")).toEqual([]);
    expect(granted(acl, "secret/x/y")).toEqual([]);
    expect(granted(acl, "secret")).toEqual([]);
    expect(acl.capabilities("other")).toEqual(new Set(["deny"]));
  });

  it("denies everything with no policies at all, or an empty policy", async () => {
    expect(granted(Acl.fromPolicies([]), "secret/x")).toEqual([]);
    expect(granted(await aclOf(""), "anything")).toEqual([]);
    expect(Acl.fromPolicies([]).capabilities("x")).toEqual(new Set(["deny"]));
  });
});

describe("Acl: exact and glob rules", () => {
  it("an exact rule beats a glob, even a broader grant", async () => {
    const acl = await aclOf(`
path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/readonly" { capabilities = ["read"] }
`);
    expect(granted(acl, "secret/readonly")).toEqual(["read"]);
    expect(granted(acl, "secret/other")).toEqual(["create", "read", "update", "delete", "list"]);
  });

  it("an exact allow beats a glob deny (the exact rule wins, as in Vault)", async () => {
    const acl = await aclOf(`
path "secret/*" { capabilities = ["deny"] }
path "secret/open" { capabilities = ["read"] }
`);
    expect(acl.allows("secret/open", "read")).toBe(true);
    expect(acl.allows("secret/closed", "read")).toBe(false);
  });

  it("the longest matching prefix wins", async () => {
    const acl = await aclOf(`
path "secret/*" { capabilities = ["read"] }
path "secret/team/*" { capabilities = ["update"] }
path "secret/team/private/*" { capabilities = ["deny"] }
`);
    expect(granted(acl, "secret/x")).toEqual(["read"]);
    expect(granted(acl, "secret/team/x")).toEqual(["update"]);
    expect(granted(acl, "secret/team/private/x")).toEqual([]);
    expect(granted(acl, "secret/team")).toEqual(["read"]);
  });

  it("* matches any suffix, across segments, but not the path before it", async () => {
    const acl = await aclOf(`path "secret/app/*" { capabilities = ["read"] }`);
    expect(acl.allows("secret/app/a", "read")).toBe(true);
    expect(acl.allows("secret/app/a/b/c", "read")).toBe(true);
    expect(acl.allows("secret/app/", "read")).toBe(true);
    expect(acl.allows("secret/app", "read")).toBe(false);
    expect(acl.allows("secret/apples", "read")).toBe(false);
  });

  it("* matches within a segment too (secret/foo* matches secret/foobar)", async () => {
    const acl = await aclOf(`path "secret/foo*" { capabilities = ["read"] }`);
    expect(acl.allows("secret/foo", "read")).toBe(true);
    expect(acl.allows("secret/foobar", "read")).toBe(true);
    expect(acl.allows("secret/foo/bar", "read")).toBe(true);
    expect(acl.allows("secret/fo", "read")).toBe(false);
  });

  it("a lone * matches everything", async () => {
    const acl = await aclOf(`path "*" { capabilities = ["read"] }`);
    expect(acl.allows("a", "read")).toBe(true);
    expect(acl.allows("sys/policies/acl/x", "read")).toBe(true);
    expect(acl.allows("a", "update")).toBe(false);
  });
});

describe("Acl: + segment wildcards", () => {
  it("+ matches exactly one segment (secret/+/config)", async () => {
    const acl = await aclOf(`path "secret/+/config" { capabilities = ["read"] }`);
    expect(acl.allows("secret/app/config", "read")).toBe(true);
    expect(acl.allows("secret/other-app/config", "read")).toBe(true);
    expect(acl.allows("secret/config", "read")).toBe(false);
    expect(acl.allows("secret/a/b/config", "read")).toBe(false);
    expect(acl.allows("secret/app/config/x", "read")).toBe(false);
    expect(acl.allows("secret/app/configs", "read")).toBe(false);
  });

  it("+ matches an empty segment too, as in Vault (any text without '/')", async () => {
    // Changed: Egide used to refuse the empty segment; Vault's tryMatchWildcardPath accepts it.
    const acl = await aclOf(`path "secret/+/config" { capabilities = ["read"] }\npath "kv/+" { capabilities = ["read", "list"] }`);
    expect(acl.allows("secret//config", "read")).toBe(true);
    expect(acl.allows("kv/", "read")).toBe(true);
    expect(acl.allows("kv/", "list")).toBe(true);
    expect(acl.allows("kv/a", "read")).toBe(true);
    expect(acl.allows("kv", "read")).toBe(false);
    expect(acl.allows("kv/a/", "read")).toBe(false);
    expect(acl.allows("secret/config", "read")).toBe(false);
  });

  it("+ at the front, at the end, several, and with a trailing *", async () => {
    const acl = await aclOf(`
path "+/segment/at/front" { capabilities = ["read"] }
path "test/segment/at/end/+" { capabilities = ["read"] }
path "test/+/two/+" { capabilities = ["read"] }
path "test/+/glob/+/*" { capabilities = ["read"] }
path "test/+/partial/+/end*" { capabilities = ["read"] }
`);
    expect(acl.allows("test/segment/at/front", "read")).toBe(true);
    expect(acl.allows("test/segment/at/frond", "read")).toBe(false);
    expect(acl.allows("test/segment/at/end/foo", "read")).toBe(true);
    expect(acl.allows("test/segment/at/end/foo/bar", "read")).toBe(false);
    expect(acl.allows("test/a/two/b", "read")).toBe(true);
    expect(acl.allows("test/a/two/b/c", "read")).toBe(false);
    expect(acl.allows("test/a/glob/b/c/d", "read")).toBe(true);
    expect(acl.allows("test/a/glob/b/", "read")).toBe(true);
    expect(acl.allows("test/a/glob/b", "read")).toBe(false);
    expect(acl.allows("test/a/partial/b/endless", "read")).toBe(true);
    expect(acl.allows("test/a/partial/b/end/x", "read")).toBe(true);
    expect(acl.allows("test/a/partial/b/en", "read")).toBe(false);
  });

  it("a literal + inside a segment is not a wildcard", async () => {
    const acl = await aclOf(`path "kv/a+b/x" { capabilities = ["read"] }`);
    expect(acl.allows("kv/a+b/x", "read")).toBe(true);
    expect(acl.allows("kv/ab/x", "read")).toBe(false);
  });
});

describe("Acl: priority among wildcard rules (Vault's documented order)", () => {
  // Each case: a read rule and an update rule both matching `path`; the update rule is more
  // specific, so update is allowed and read is not. The cases are Vault's own
  // (TestACL_SegmentWildcardPriority) plus the example of the Policies documentation.
  const cases: Array<{ why: string; policy: string; path: string }> = [
    {
      why: "docs: secret/+/+/foo/* loses to secret/* (same first wildcard, both globs, more + segments)",
      policy: `path "secret/+/+/foo/*" { capabilities = ["read"] }\npath "secret/*" { capabilities = ["update"] }`,
      path: "secret/a/b/foo/bar",
    },
    {
      why: "* beats +/* (both globs starting at 0; fewer + segments)",
      policy: `path "+/*" { capabilities = ["read"] }\npath "*" { capabilities = ["update"] }`,
      path: "foo/bar/bar/baz",
    },
    {
      why: "foo/+/* beats +/* (first wildcard later)",
      policy: `path "+/*" { capabilities = ["read"] }\npath "foo/+/*" { capabilities = ["update"] }`,
      path: "foo/bar/bar/baz",
    },
    {
      why: "foo/+/bar/baz beats foo/+/+/* (not a glob)",
      policy: `path "foo/+/+/*" { capabilities = ["read"] }\npath "foo/+/bar/baz" { capabilities = ["update"] }`,
      path: "foo/bar/bar/baz",
    },
    {
      why: "foo/+/bar/baz beats foo/+/+/baz (fewer + segments)",
      policy: `path "foo/+/+/baz" { capabilities = ["read"] }\npath "foo/+/bar/baz" { capabilities = ["update"] }`,
      path: "foo/bar/bar/baz",
    },
    {
      why: "foo/(ar/+/baz beats foo/+/(ar/baz (first wildcard later, not lexical order)",
      policy: `path "foo/+/(ar/baz" { capabilities = ["read"] }\npath "foo/(ar/+/baz" { capabilities = ["update"] }`,
      path: "foo/(ar/(ar/baz",
    },
    {
      why: "foo/bar/+/baz beats foo/bar/+/baz* (a glob is lower)",
      policy: `path "foo/bar/+/baz*" { capabilities = ["read"] }\npath "foo/bar/+/baz" { capabilities = ["update"] }`,
      path: "foo/bar/bar/baz",
    },
    {
      why: "foo/bar/+/ba* beats foo/bar/+/b* (longer)",
      policy: `path "foo/bar/+/b*" { capabilities = ["read"] }\npath "foo/bar/+/ba*" { capabilities = ["update"] }`,
      path: "foo/bar/bar/baz",
    },
    {
      why: "1/2/+ beats 1/2/* (same first wildcard position, not a glob)",
      policy: `path "1/2/*" { capabilities = ["read"] }\npath "1/2/+" { capabilities = ["update"] }`,
      path: "1/2/3",
    },
    {
      why: "secret/+/config beats secret/* (same first wildcard position, not a glob)",
      policy: `path "secret/*" { capabilities = ["read"] }\npath "secret/+/config" { capabilities = ["update"] }`,
      path: "secret/app/config",
    },
    {
      why: "secret/app/* beats secret/+/config (first wildcard later)",
      policy: `path "secret/+/config" { capabilities = ["read"] }\npath "secret/app/*" { capabilities = ["update"] }`,
      path: "secret/app/config",
    },
    {
      why: "the lexically greater pattern wins when everything else is equal (+b is a literal segment)",
      policy: `path "q/+/cc" { capabilities = ["read"] }\npath "q/+b/+" { capabilities = ["update"] }`,
      path: "q/+b/cc",
    },
  ];

  it.each(cases)("$why", async ({ policy, path }) => {
    const acl = await aclOf(policy);
    expect(acl.allows(path, "update")).toBe(true);
    expect(acl.allows(path, "read")).toBe(false);
  });

  it("the glob, the + and the ++ rules of Vault's test policy each govern their own paths", async () => {
    const acl = await aclOf(`
path "1/2/*" { capabilities = ["create"] }
path "1/2/+" { capabilities = ["read"] }
path "1/2/+/+" { capabilities = ["update"] }
`);
    expect(granted(acl, "1/2/3")).toEqual(["read"]);
    expect(granted(acl, "1/2/3/4")).toEqual(["update"]);
    expect(granted(acl, "1/2/3/4/5")).toEqual(["create"]);
  });
});

describe("Acl: several policies", () => {
  it("unites the capabilities of the same pattern from several policies", async () => {
    const acl = await aclOf(`path "secret/*" { capabilities = ["read"] }`, `path "secret/*" { capabilities = ["list", "update"] }`);
    expect(granted(acl, "secret/x")).toEqual(["read", "update", "list"]);
  });

  it("unites exact rules and segment-wildcard rules too, and stanzas within one policy", async () => {
    const acl = await aclOf(
      `path "a" { capabilities = ["read"] }\npath "s/+/x" { capabilities = ["read"] }\npath "a" { capabilities = ["sudo"] }`,
      `path "a" { capabilities = ["update"] }\npath "s/+/x" { capabilities = ["delete"] }`,
    );
    expect(granted(acl, "a")).toEqual(["read", "update", "sudo"]);
    expect(granted(acl, "s/q/x")).toEqual(["read", "delete"]);
  });

  it("deny on the same pattern in any policy overrides the others", async () => {
    const acl = await aclOf(`path "secret/*" { capabilities = ["read", "list"] }`, `path "secret/*" { capabilities = ["deny"] }`);
    expect(granted(acl, "secret/x")).toEqual([]);
    const reversed = await aclOf(`path "secret/*" { capabilities = ["deny"] }`, `path "secret/*" { capabilities = ["read"] }`);
    expect(granted(reversed, "secret/x")).toEqual([]);
    expect(reversed.capabilities("secret/x")).toEqual(new Set(["deny"]));
  });

  it("a deny on a more specific path wins over another policy's broader grant", async () => {
    const acl = await aclOf(`path "secret/*" { capabilities = ["read"] }`, `path "secret/admin/*" { capabilities = ["deny"] }`);
    expect(acl.allows("secret/app", "read")).toBe(true);
    expect(acl.allows("secret/admin/root-password", "read")).toBe(false);
  });

  it("a broader grant does not spill over a more specific rule of another policy", async () => {
    // Rules do not combine across patterns: the most specific one governs alone.
    const acl = await aclOf(`path "secret/*" { capabilities = ["read", "update"] }`, `path "secret/app/*" { capabilities = ["list"] }`);
    expect(granted(acl, "secret/app/x")).toEqual(["list"]);
  });

  it("a policy named root gives the root ACL, and cannot be combined with others", async () => {
    const root = { name: "root", rules: [], raw: "", format: "hcl" as const };
    expect(Acl.fromPolicies([root]).isRoot).toBe(true);
    expect(() => Acl.fromPolicies([root, { ...root, name: "other" }])).toThrow(/other policies present along with root/);
  });
});

describe("Acl: root", () => {
  it("allows every capability on every path", () => {
    const acl = Acl.root();
    expect(acl.isRoot).toBe(true);
    for (const path of ["", "secret/x", "sys/seal", "a/b/c/"]) expect(granted(acl, path)).toEqual(ALL);
    expect(acl.capabilities("anything")).toEqual(new Set(ALL));
  });

  it("is a single shared instance, not built from rules", () => {
    expect(Acl.root()).toBe(Acl.root());
    expect(Acl.fromPolicies([]).isRoot).toBe(false);
  });
});

describe("Acl: list requests and the trailing slash", () => {
  it("a list check of foo/ is granted by a rule on foo (exact, without the slash)", async () => {
    const acl = await aclOf(`path "secret/metadata/app" { capabilities = ["list", "read"] }`);
    expect(acl.allows("secret/metadata/app/", "list")).toBe(true);
    // Only list checks get the fallback.
    expect(acl.allows("secret/metadata/app/", "read")).toBe(false);
  });

  it("a rule on foo/ and a rule on foo/* both grant list on foo/", async () => {
    expect((await aclOf(`path "sys/policies/acl/" { capabilities = ["list"] }`)).allows("sys/policies/acl/", "list")).toBe(true);
    expect((await aclOf(`path "sys/policies/acl/*" { capabilities = ["list"] }`)).allows("sys/policies/acl/", "list")).toBe(true);
    expect((await aclOf(`path "sys/policies/acl" { capabilities = ["list"] }`)).allows("sys/policies/acl/", "list")).toBe(true);
    expect((await aclOf(`path "sys/policies/*" { capabilities = ["list"] }`)).allows("sys/policies/acl/", "list")).toBe(true);
  });

  it("wildcard rules without the trailing slash match list requests too (Vault 1.15+)", async () => {
    const acl = await aclOf(`path "+/sys/policies/acl" { capabilities = ["list"] }`);
    expect(acl.allows("ns1/sys/policies/acl/", "list")).toBe(true);
    const withSlash = await aclOf(`path "+/sys/policies/acl/" { capabilities = ["list"] }`);
    expect(withSlash.allows("ns1/sys/policies/acl/", "list")).toBe(true);
  });

  it("a deny on foo/* denies the list of foo/ even when a rule matching foo grants list", async () => {
    // Changed: Egide used to take the rules matching "secret/foo" first (Vault before its fix of
    // the LIST deny bypass), so this list was granted. Vault now ranks the candidates of
    // "secret/foo" and "secret/foo/" together, and the more specific deny wins.
    const acl = await aclOf(`path "secret/fo*" { capabilities = ["list"] }\npath "secret/foo/*" { capabilities = ["deny"] }`);
    expect(acl.allows("secret/foo/", "list")).toBe(false);
    expect(acl.allowOperation({ path: "secret/foo/", operation: "list" }).allowed).toBe(false);
    expect(acl.capabilities("secret/foo/")).toEqual(new Set(["deny"]));
    expect(acl.allows("secret/foo/x", "list")).toBe(false);
    expect(acl.allows("secret/fo/", "list")).toBe(true);
  });

  it("a rule matching foo still grants the list of foo/ over a more specific rule that neither lists nor denies", async () => {
    // Vault's resolveACLPermsForListOp: the most specific rule granting list wins unless a more
    // specific one denies (the VAULT-3825 behaviour is kept).
    const acl = await aclOf(`path "secret/fo*" { capabilities = ["list"] }\npath "secret/foo/*" { capabilities = ["read"] }`);
    expect(acl.allows("secret/foo/", "list")).toBe(true);
    expect(acl.allowOperation({ path: "secret/foo/", operation: "list" }).capabilities).toEqual(new Set(["list"]));
    // Without any rule granting list, the most specific rule governs.
    const none = await aclOf(`path "secret/fo*" { capabilities = ["update"] }\npath "secret/foo/*" { capabilities = ["read"] }`);
    expect(none.capabilities("secret/foo/")).toEqual(new Set(["read"]));
    expect(none.allows("secret/foo/", "list")).toBe(false);
  });

  it("the list of a denied subtree's root is denied (secret/metadata/* list, secret/metadata/admin/* deny)", async () => {
    const acl = await aclOf(
      `path "secret/metadata/*" { capabilities = ["list"] }`,
      `path "secret/metadata/admin/*" { capabilities = ["deny"] }`,
    );
    expect(acl.allows("secret/metadata/admin/", "list")).toBe(false);
    expect(acl.allows("secret/metadata/admin/x/", "list")).toBe(false);
    expect(acl.allows("secret/metadata/", "list")).toBe(true);
    expect(acl.allows("secret/metadata/app/", "list")).toBe(true);
    // A + rule is a candidate of the slash-stripped form only: it still grants the list.
    const plus = await aclOf(`path "kv/+" { capabilities = ["list"] }`);
    expect(plus.allows("kv/private/", "list")).toBe(true);
    const plusDenied = await aclOf(`path "kv/+" { capabilities = ["list"] }\npath "kv/private/*" { capabilities = ["deny"] }`);
    expect(plusDenied.allows("kv/private/", "list")).toBe(false);
    expect(plusDenied.allows("kv/public/", "list")).toBe(true);
  });

  it("capabilities() looks up as a list request does", async () => {
    const acl = await aclOf(`path "secret/metadata/app" { capabilities = ["list", "read"] }`);
    expect(acl.capabilities("secret/metadata/app/")).toEqual(new Set(["read", "list"]));
  });
});

describe("Acl: Vault's own test policies (vault/acl_test.go)", () => {
  type Case = [Capability, string, boolean, boolean];

  it("single policy (TestACL_Single)", async () => {
    const acl = await aclOf(aclPolicy);
    const cases: Case[] = [
      ["read", "root", false, false],
      ["read", "dev/foo", true, true],
      ["update", "dev/foo", true, true],
      ["delete", "stage/foo", true, false],
      ["list", "stage/aws/foo", true, true],
      ["update", "stage/aws/foo", true, true],
      ["update", "stage/aws/policy/foo", true, true],
      ["delete", "prod/foo", false, false],
      ["update", "prod/foo", false, false],
      ["read", "prod/foo", true, false],
      ["list", "prod/foo", true, false],
      ["read", "prod/aws/foo", false, false],
      ["read", "foo/bar", true, true],
      ["list", "foo/bar", false, true],
      ["update", "foo/bar", false, true],
      ["create", "foo/bar", true, true],
      ["read", "baz/quux", true, false],
      ["create", "baz/quux", true, false],
      ["patch", "baz/quux", true, false],
      ["list", "baz/quux", false, false],
      ["update", "baz/quux", false, false],
      ["read", "test/foo/bar/segment", false, false],
      ["read", "test/foo/segment", true, false],
      ["read", "test/bar/segment", true, false],
      ["read", "test/segment/at/frond", false, false],
      ["read", "test/segment/at/front", true, false],
      ["read", "test/segment/at/end/foo", true, false],
      ["read", "test/segment/at/end/foo/", false, false],
      ["read", "test/segment/at/end/v2/foo/", true, false],
      ["read", "test/segment/wildcard/at/foo/", true, false],
      ["read", "test/segment/wildcard/at/end", true, false],
      ["read", "test/segment/wildcard/at/end/", true, false],
      ["read", "1/2/3/4", false, false],
      ["read", "1/2/3", true, false],
      ["update", "1/2/3", false, false],
      ["update", "1/2/3/4", true, false],
      ["create", "1/2/3/4/5", true, false],
    ];
    for (const [capability, path, allowed, sudo] of cases) {
      expect(acl.allows(path, capability), `${capability} ${path}`).toBe(allowed);
      expect(acl.allows(path, "sudo"), `sudo ${path}`).toBe(sudo);
    }
  });

  it("layered policies (TestACL_Layered)", async () => {
    const acl = await aclOf(aclPolicy, aclPolicy2);
    const cases: Case[] = [
      ["read", "root", false, false],
      ["read", "dev/foo", true, true],
      ["update", "dev/foo", true, true],
      ["read", "dev/hide/foo", false, false],
      ["update", "dev/hide/foo", false, false],
      ["delete", "stage/foo", true, false],
      ["list", "stage/aws/foo", true, true],
      ["update", "stage/aws/foo", true, true],
      ["update", "stage/aws/policy/foo", false, false],
      ["delete", "prod/foo", true, false],
      ["update", "prod/foo", true, false],
      ["read", "prod/foo", true, false],
      ["list", "prod/foo", true, false],
      ["read", "prod/aws/foo", false, false],
      ["read", "sys/status", false, false],
      ["update", "sys/seal", true, true],
      ["read", "foo/bar", false, false],
      ["list", "foo/bar", false, false],
      ["update", "foo/bar", false, false],
      ["create", "foo/bar", false, false],
      ["read", "baz/quux", false, false],
      ["list", "baz/quux", false, false],
      ["update", "baz/quux", false, false],
      ["create", "baz/quux", false, false],
      ["patch", "baz/quux", false, false],
    ];
    for (const [capability, path, allowed, sudo] of cases) {
      expect(acl.allows(path, capability), `${capability} ${path}`).toBe(allowed);
      expect(acl.allows(path, "sudo"), `sudo ${path}`).toBe(sudo);
    }
  });

  it("capabilities() (TestACL_Capabilities)", async () => {
    const acl = await aclOf(aclPolicy);
    expect(acl.capabilities("dev")).toEqual(new Set(["deny"]));
    expect(acl.capabilities("dev/")).toEqual(new Set(["sudo", "read", "list", "update", "delete", "create"]));
    expect(acl.capabilities("stage/aws/test")).toEqual(new Set(["sudo", "read", "list", "update"]));
  });
});

describe("Acl.allowOperation (Vault's AllowOperation and ACLResults)", () => {
  it("root: allowed, sudo and isRoot everywhere, parameters not looked at", () => {
    const result = Acl.root().allowOperation({ path: "sys/anything", operation: "update", data: { x: 1 } });
    expect(result).toEqual({
      allowed: true,
      sudo: true,
      isRoot: true,
      capabilities: new Set(ALL),
      minWrappingTtlMs: 0,
      maxWrappingTtlMs: 0,
    });
  });

  it("no matching rule: not allowed, no sudo, no capabilities", async () => {
    const acl = await aclOf(`path "a" { capabilities = ["read"] }`);
    expect(acl.allowOperation({ path: "b", operation: "read" })).toEqual({
      allowed: false,
      sudo: false,
      isRoot: false,
      capabilities: new Set(),
      minWrappingTtlMs: 0,
      maxWrappingTtlMs: 0,
    });
  });

  it("sudo is that of the governing rule, whether or not the operation is allowed (as Vault's RootPrivs)", async () => {
    const acl = await aclOf(`path "foo/bar" { capabilities = ["read", "create", "sudo"] }`);
    expect(acl.allowOperation({ path: "foo/bar", operation: "update" })).toEqual({
      allowed: false,
      sudo: true,
      isRoot: false,
      capabilities: new Set(["create", "read", "sudo"]),
      minWrappingTtlMs: 0,
      maxWrappingTtlMs: 0,
    });
    expect(acl.allowOperation({ path: "foo/bar", operation: "read" }).allowed).toBe(true);
  });

  it("a deny rule: not allowed, capabilities {deny}", async () => {
    const acl = await aclOf(`path "a/*" { capabilities = ["deny"] }`);
    expect(acl.allowOperation({ path: "a/b", operation: "read" })).toEqual({
      allowed: false,
      sudo: false,
      isRoot: false,
      capabilities: new Set(["deny"]),
      minWrappingTtlMs: 0,
      maxWrappingTtlMs: 0,
    });
  });

  it("checks parameters for read, create, update and patch only; capabilityCheckOnly skips them", async () => {
    const acl = await aclOf(`path "a" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
  denied_parameters = { "x" = [] }
}`);
    const data = { x: "1" };
    for (const operation of ["create", "read", "update", "patch"] as const) {
      expect(acl.allowOperation({ path: "a", operation, data }).allowed, operation).toBe(false);
      expect(acl.allowOperation({ path: "a", operation, data }, true).allowed, operation).toBe(true);
      expect(acl.allowOperation({ path: "a", operation }).allowed, operation).toBe(true);
    }
    for (const operation of ["delete", "list"] as const)
      expect(acl.allowOperation({ path: "a", operation, data }).allowed, operation).toBe(true);
  });

  it("allows() agrees with allowOperation for every capability, list included", async () => {
    const acl = await aclOf(`
path "secret/metadata/*" { capabilities = ["list", "read"] }
path "secret/metadata/admin/*" { capabilities = ["deny"] }
path "kv/+" { capabilities = ["list", "sudo", "update"] }
path "x" { capabilities = ["create"] }
`);
    for (const path of [
      "secret/metadata/",
      "secret/metadata/admin/",
      "secret/metadata/admin",
      "kv/a/",
      "kv/a",
      "kv/",
      "x",
      "x/",
      "nothing/",
    ]) {
      for (const operation of ["create", "read", "update", "patch", "delete", "list"] as const) {
        expect(acl.allows(path, operation), `${operation} ${path}`).toBe(acl.allowOperation({ path, operation }, true).allowed);
      }
      expect(acl.allows(path, "sudo"), `sudo ${path}`).toBe(acl.allowOperation({ path, operation: "read" }, true).sudo);
    }
  });
});

describe("Acl: parameter constraints", () => {
  const write = (acl: Acl, path: string, data: Record<string, unknown>) => acl.allowOperation({ path, operation: "update", data }).allowed;

  it("required parameters are looked up lower-cased among the request's keys as sent", async () => {
    const acl = await aclOf(`path "a" {
  capabilities = ["update"]
  required_parameters = ["Name"]
}`);
    expect(write(acl, "a", { name: "x" })).toBe(true);
    expect(write(acl, "a", { Name: "x" })).toBe(false);
    expect(write(acl, "a", {})).toBe(false);
    expect(acl.allowOperation({ path: "a", operation: "update" }).allowed).toBe(false);
  });

  it("request parameter names are lower-cased to find their constraints", async () => {
    const acl = await aclOf(`path "a" {
  capabilities = ["update"]
  denied_parameters = { "Secret" = [] }
}`);
    expect(write(acl, "a", { SECRET: 1 })).toBe(false);
    expect(write(acl, "a", { secret: 1 })).toBe(false);
    expect(write(acl, "a", { other: 1 })).toBe(true);
  });

  it("string values: globs at either end, comma-separated parts, surrounding spaces trimmed", async () => {
    const acl = await aclOf(`path "a" {
  capabilities = ["update"]
  allowed_parameters = { "role" = ["app-*", "*-reader", "exact"], "any" = ["**"], "star" = ["*"] }
  denied_parameters = { "role" = ["*admin*"] }
}`);
    expect(write(acl, "a", { role: "app-1" })).toBe(true);
    expect(write(acl, "a", { role: "db-reader" })).toBe(true);
    expect(write(acl, "a", { role: "exact" })).toBe(true);
    expect(write(acl, "a", { role: "exactly" })).toBe(false);
    expect(write(acl, "a", { role: "app-admin" })).toBe(false);
    expect(write(acl, "a", { role: "app-1, exact" })).toBe(true);
    expect(write(acl, "a", { role: "exact,other" })).toBe(false);
    // The whole string is tried first: "app-1,other" starts with "app-".
    expect(write(acl, "a", { role: "app-1,other" })).toBe(true);
    expect(write(acl, "a", { role: "exact,superadmin" })).toBe(false);
    expect(write(acl, "a", { role: [" exact", "app-2"] })).toBe(false);
    expect(write(acl, "a", { role: ["exact", "app-2"] })).toBe(true);
    expect(write(acl, "a", { role: ["exact", "x-admin"] })).toBe(false);
    expect(write(acl, "a", { any: "whatever" })).toBe(true);
    // A lone "*" is not a glob: it matches only "*".
    expect(write(acl, "a", { star: "*" })).toBe(true);
    expect(write(acl, "a", { star: "x" })).toBe(false);
  });

  it("an empty array or empty string must match an allowed value as a whole (deliberate difference from Vault)", async () => {
    const acl = await aclOf(`path "auth/token/create" {
  capabilities = ["update"]
  required_parameters = ["policies"]
  allowed_parameters = { "policies" = ["app"], "*" = [] }
}`);
    expect(write(acl, "auth/token/create", { policies: ["app"] })).toBe(true);
    expect(write(acl, "auth/token/create", { policies: "app" })).toBe(true);
    expect(write(acl, "auth/token/create", { policies: [] })).toBe(false);
    expect(write(acl, "auth/token/create", { policies: "" })).toBe(false);
    const allowsEmpty = await aclOf(`path "a" {
  capabilities = ["update"]
  allowed_parameters = { "p" = [""] }
}`);
    expect(write(allowsEmpty, "a", { p: "" })).toBe(true);
  });

  it("policy names in policies / token_policies are compared lower-cased, as Vault does", async () => {
    const acl = await aclOf(`path "auth/token/create" {
  capabilities = ["update"]
  denied_parameters = { "policies" = ["admin"], "token_policies" = ["admin"] }
}`);
    expect(write(acl, "auth/token/create", { policies: "ADMIN" })).toBe(false);
    expect(write(acl, "auth/token/create", { policies: ["app", "Admin"] })).toBe(false);
    expect(write(acl, "auth/token/create", { Token_Policies: "aDmIn" })).toBe(false);
    expect(write(acl, "auth/token/create", { policies: "app" })).toBe(true);
  });

  it("non-string values match by deep equality; null matches only null", async () => {
    const acl = await aclOf(`path "a" {
  capabilities = ["update"]
  allowed_parameters = { "n" = [1, 2.5], "b" = [false], "o" = [{ "k" = ["v", 1] }], "s" = ["1"], "z" = [null] }
}`);
    expect(write(acl, "a", { n: 1 })).toBe(true);
    expect(write(acl, "a", { n: 2.5 })).toBe(true);
    expect(write(acl, "a", { n: "1" })).toBe(false);
    expect(write(acl, "a", { s: 1 })).toBe(false);
    expect(write(acl, "a", { b: false })).toBe(true);
    expect(write(acl, "a", { b: true })).toBe(false);
    expect(write(acl, "a", { o: { k: ["v", 1] } })).toBe(true);
    expect(write(acl, "a", { o: { k: ["v", 1], extra: true } })).toBe(false);
    expect(write(acl, "a", { z: null })).toBe(true);
    expect(write(acl, "a", { n: null })).toBe(false);
  });

  it("merging stanzas and policies: constraints are combined, not dropped, by a broader grant (as Vault's NewACL)", async () => {
    // One policy grants update freely, another restricts it on the same path: the merged rule
    // carries the restriction.
    const acl = await aclOf(
      `path "a" { capabilities = ["update"] }`,
      `path "a" {\n  capabilities = ["update"]\n  allowed_parameters = { "x" = ["1"] }\n}`,
    );
    expect(write(acl, "a", { x: "1" })).toBe(true);
    expect(write(acl, "a", { y: "1" })).toBe(false);
    // Values of the same name append; an empty list on either side means any value.
    const merged = await aclOf(
      `path "a" {\n  capabilities = ["update"]\n  allowed_parameters = { "x" = ["1"], "y" = [] }\n  required_parameters = ["x"]\n}`,
      `path "a" {\n  capabilities = ["update"]\n  allowed_parameters = { "x" = ["2"], "y" = ["only"] }\n  required_parameters = ["y"]\n}`,
    );
    expect(write(merged, "a", { x: "1", y: "anything" })).toBe(true);
    expect(write(merged, "a", { x: "2", y: "anything" })).toBe(true);
    expect(write(merged, "a", { x: "3", y: "anything" })).toBe(false);
    expect(write(merged, "a", { x: "1" })).toBe(false);
  });

  it("a deny merged in drops the constraints, and denies", async () => {
    const acl = await aclOf(
      `path "a/*" {\n  capabilities = ["update"]\n  allowed_parameters = { "x" = [] }\n}`,
      `path "a/*" { capabilities = ["deny"] }`,
    );
    expect(acl.allowOperation({ path: "a/b", operation: "update", data: { x: 1 } })).toEqual({
      allowed: false,
      sudo: false,
      isRoot: false,
      capabilities: new Set(["deny"]),
      minWrappingTtlMs: 0,
      maxWrappingTtlMs: 0,
    });
  });

  it("the constraints of the governing rule only apply (no union across patterns)", async () => {
    const acl = await aclOf(
      `path "a/*" {\n  capabilities = ["update"]\n  denied_parameters = { "*" = [] }\n}\npath "a/free" { capabilities = ["update"] }`,
    );
    expect(write(acl, "a/free", { x: 1 })).toBe(true);
    expect(write(acl, "a/other", { x: 1 })).toBe(false);
    expect(write(acl, "a/other", {})).toBe(true);
  });

  it("parameter names such as __proto__ are plain names, in policies and in requests", async () => {
    const acl = await aclOf(`{"path": {"a": {"capabilities": ["update"], "allowed_parameters": {"__proto__": ["x"], "constructor": []}}}}`);
    expect(write(acl, "a", JSON.parse(`{"__proto__": "x"}`) as Record<string, unknown>)).toBe(true);
    expect(write(acl, "a", JSON.parse(`{"__proto__": "y"}`) as Record<string, unknown>)).toBe(false);
    expect(write(acl, "a", { constructor: 1 })).toBe(true);
    expect(write(acl, "a", { toString: 1 })).toBe(false);
    const required = await aclOf(`path "b" {\n  capabilities = ["update"]\n  required_parameters = ["constructor"]\n}`);
    expect(write(required, "b", {})).toBe(false);
  });

  it("glob matching stays linear on long adversarial values", async () => {
    const acl = await aclOf(`path "a" {\n  capabilities = ["update"]\n  allowed_parameters = { "v" = ["*${"a".repeat(1000)}b*"] }\n}`);
    const value = "a".repeat(200_000);
    const started = performance.now();
    for (let i = 0; i < 20; i++) expect(write(acl, "a", { v: value })).toBe(false);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("Acl.hasMountAccess (Vault's hasMountAccess)", () => {
  it("root has access to every mount", () => {
    expect(Acl.root().hasMountAccess("secret/")).toBe(true);
  });

  it("a capability on the mount path itself (a list-style lookup)", async () => {
    expect((await aclOf(`path "secret/*" { capabilities = ["read"] }`)).hasMountAccess("secret/")).toBe(true);
    expect((await aclOf(`path "secret" { capabilities = ["read"] }`)).hasMountAccess("secret/")).toBe(true);
    expect((await aclOf(`path "secret/*" { capabilities = ["deny"] }`)).hasMountAccess("secret/")).toBe(false);
  });

  it("any exact or prefix rule under the mount that grants something without denying", async () => {
    expect((await aclOf(`path "secret/data/app" { capabilities = ["read"] }`)).hasMountAccess("secret/")).toBe(true);
    expect((await aclOf(`path "secret/data/*" { capabilities = ["list"] }`)).hasMountAccess("secret/")).toBe(true);
    expect((await aclOf(`path "secret/data/app" { capabilities = ["deny"] }`)).hasMountAccess("secret/")).toBe(false);
    expect(
      (await aclOf(`path "secret/data/app" { capabilities = ["deny"] }\npath "secret/data/b" { capabilities = ["patch"] }`)).hasMountAccess(
        "secret/",
      ),
    ).toBe(true);
    expect((await aclOf(`path "secretive/x" { capabilities = ["read"] }`)).hasMountAccess("secret/")).toBe(false);
    expect((await aclOf(`path "other/*" { capabilities = ["read"] }`)).hasMountAccess("secret/")).toBe(false);
  });

  it("a mount path without its trailing slash is given one", async () => {
    expect((await aclOf(`path "secret/data/app" { capabilities = ["read"] }`)).hasMountAccess("secret")).toBe(true);
    expect((await aclOf(`path "secretive/x" { capabilities = ["read"] }`)).hasMountAccess("secret")).toBe(false);
  });

  it("segment-wildcard rules reaching under the mount", async () => {
    expect((await aclOf(`path "+/data/app" { capabilities = ["read"] }`)).hasMountAccess("secret/")).toBe(true);
    expect((await aclOf(`path "+/data/app" { capabilities = ["deny"] }`)).hasMountAccess("secret/")).toBe(false);
    expect((await aclOf(`path "kv/+/x" { capabilities = ["read"] }`)).hasMountAccess("secret/")).toBe(false);
    expect((await aclOf(`path "team/+/x" { capabilities = ["read"] }`)).hasMountAccess("team/a/")).toBe(true);
    expect((await aclOf(`path "team/+/x" { capabilities = ["read"] }`)).hasMountAccess("team/a/b/")).toBe(false);
  });
});
