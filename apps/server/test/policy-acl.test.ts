import { describe, expect, it } from "vitest";
import { Acl } from "../src/policy/acl.js";
import { parsePolicy } from "../src/policy/parse-policy.js";
import { CAPABILITIES } from "../src/policy/policy.js";
import type { Capability } from "../src/server-context.js";

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

  it("+ does not match an empty segment", async () => {
    const acl = await aclOf(`path "secret/+/config" { capabilities = ["read"] }\npath "kv/+" { capabilities = ["read"] }`);
    expect(acl.allows("secret//config", "read")).toBe(false);
    expect(acl.allows("kv/", "read")).toBe(false);
    expect(acl.allows("kv/a", "read")).toBe(true);
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

  it("the rule matching the path without the slash is tried first", async () => {
    // As in Vault: for "secret/foo/", the wildcard rules matching "secret/foo" are checked
    // before those matching "secret/foo/", even a more specific one.
    const acl = await aclOf(`path "secret/fo*" { capabilities = ["list"] }\npath "secret/foo/*" { capabilities = ["deny"] }`);
    expect(acl.allows("secret/foo/", "list")).toBe(true);
    expect(acl.allows("secret/foo/x", "list")).toBe(false);
  });

  it("capabilities() looks up as a list request does", async () => {
    const acl = await aclOf(`path "secret/metadata/app" { capabilities = ["list", "read"] }`);
    expect(acl.capabilities("secret/metadata/app/")).toEqual(new Set(["read", "list"]));
  });
});

describe("Acl: Vault's own test policies (vault/acl_test.go)", () => {
  const aclPolicy = `
name = "DeV"
path "dev/*" {
  policy = "sudo"
}
path "stage/*" {
  policy = "write"
}
path "stage/aws/*" {
  policy = "read"
  capabilities = ["update", "sudo"]
}
path "stage/aws/policy/*" {
  policy = "sudo"
}
path "prod/*" {
  policy = "read"
}
path "prod/aws/*" {
  policy = "deny"
}
path "sys/*" {
  policy = "deny"
}
path "foo/bar" {
  capabilities = ["read", "create", "sudo"]
}
path "baz/quux" {
  capabilities = ["read", "create", "patch"]
}
path "test/+/segment" {
  capabilities = ["read"]
}
path "+/segment/at/front" {
  capabilities = ["read"]
}
path "test/segment/at/end/+" {
  capabilities = ["read"]
}
path "test/segment/at/end/v2/+/" {
  capabilities = ["read"]
}
path "test/+/wildcard/+/*" {
  capabilities = ["read"]
}
path "test/+/wildcardglob/+/end*" {
  capabilities = ["read"]
}
path "1/2/*" {
  capabilities = ["create"]
}
path "1/2/+" {
  capabilities = ["read"]
}
path "1/2/+/+" {
  capabilities = ["update"]
}
`;
  const aclPolicy2 = `
name = "OpS"
path "dev/hide/*" {
  policy = "deny"
}
path "stage/aws/policy/*" {
  policy = "deny"
  # This should have no effect
  capabilities = ["read", "update", "sudo"]
}
path "prod/*" {
  policy = "write"
}
path "sys/seal" {
  policy = "sudo"
}
path "foo/bar" {
  capabilities = ["deny"]
}
path "baz/quux" {
  capabilities = ["deny"]
}
`;
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
