/**
 * The cases of HashiCorp Vault's own `vault/acl_test.go` (TestACL_Capabilities, TestACL_Root,
 * TestACL_Single, TestACL_Layered, TestACL_PolicyMerge, TestACL_AllowOperation,
 * TestACL_ValuePermissions, TestACL_SegmentWildcardPriority and its _BareMount variant,
 * TestACL_CreationRace, TestACLGrantingPolicies), run against Egide's ACL, plus the LIST cases
 * of Vault's current `AllowOperation` (the trimmed and full forms of a list path).
 *
 * Translation of Vault's policy texts: the `recover` capability and operation, the `help`
 * operation are left out, and so are the rows whose outcome depends on them; the wrapping TTLs
 * (`min_wrapping_ttl`, `max_wrapping_ttl`, enforced by the request pipeline from the ACL's
 * result) are checked on their own below. Each row: the policy texts, the path, the operation and the parameters, and the
 * expected `allowed` (and, where Vault checks it, `sudo`).
 */
import { describe, expect, it } from "vitest";
import { VaultError } from "../src/http/vault-error.js";
import { Acl, wrappingTtlAllowed } from "../src/policy/acl.js";
import { parsePolicy } from "../src/policy/parse-policy.js";
import type { Policy } from "../src/policy/policy.js";
import type { Capability, Operation } from "../src/server-context.js";
import { aclPolicy, aclPolicy2 } from "./support/vault-acl-policies.js";

let counter = 0;
async function policiesOf(texts: readonly string[]): Promise<Policy[]> {
  return Promise.all(texts.map((text) => parsePolicy(`p${counter++}`, text)));
}
async function aclOf(...texts: string[]): Promise<Acl> {
  return Acl.fromPolicies(await policiesOf(texts));
}

interface Row {
  path: string;
  operation: Operation;
  data?: Record<string, unknown>;
  allowed: boolean;
  /** Vault's RootPrivs, where the Vault test checks it. */
  sudo?: boolean;
}

/** Runs `rows` against the ACL of `texts`, with a readable label per row. */
function table(title: string, texts: () => string[], rows: Row[]): void {
  describe(title, () => {
    it.each(
      rows.map((row) => ({ ...row, label: `${row.operation} ${row.path}${row.data === undefined ? "" : ` ${JSON.stringify(row.data)}`}` })),
    )("$label → allowed $allowed", async (row) => {
      const acl = await aclOf(...texts());
      const result = acl.allowOperation({
        path: row.path,
        operation: row.operation,
        ...(row.data === undefined ? {} : { data: row.data }),
      });
      expect(result.allowed).toBe(row.allowed);
      if (row.sudo !== undefined) expect(result.sudo).toBe(row.sudo);
      expect(result.isRoot).toBe(false);
    });
  });
}

// Vault's mergingPolicies, without the wrapping TTLs of hello/universe.
const mergingPolicies = `
name = "ops"
path "foo/bar" {
	policy = "write"
	denied_parameters = {
		"baz" = []
	}
	required_parameters = ["baz"]
}
path "foo/bar" {
	policy = "write"
	denied_parameters = {
		"zip" = []
	}
}
path "hello/universe" {
	policy = "write"
	allowed_parameters = {
		"foo" = []
	}
	required_parameters = ["foo"]
}
path "hello/universe" {
	policy = "write"
	allowed_parameters = {
		"bar" = []
	}
	required_parameters = ["bar"]
}
path "allow/all" {
	policy = "write"
	allowed_parameters = {
		"test" = []
		"test1" = ["foo"]
	}
}
path "allow/all" {
	policy = "write"
	allowed_parameters = {
		"*" = []
	}
}
path "allow/all1" {
	policy = "write"
	allowed_parameters = {
		"*" = []
	}
}
path "allow/all1" {
	policy = "write"
	allowed_parameters = {
		"test" = []
		"test1" = ["foo"]
	}
}
path "deny/all" {
	policy = "write"
	denied_parameters = {
		"test" = []
	}
}
path "deny/all" {
	policy = "write"
	denied_parameters = {
		"*" = []
	}
}
path "deny/all1" {
	policy = "write"
	denied_parameters = {
		"*" = []
	}
}
path "deny/all1" {
	policy = "write"
	denied_parameters = {
		"test" = []
	}
}
path "value/merge" {
	policy = "write"
	allowed_parameters = {
		"test" = [1, 2]
	}
	denied_parameters = {
		"test" = [1, 2]
	}
}
path "value/merge" {
	policy = "write"
	allowed_parameters = {
		"test" = [3, 4]
	}
	denied_parameters = {
		"test" = [3, 4]
	}
}
path "value/empty" {
	policy = "write"
	allowed_parameters = {
		"empty" = []
	}
	denied_parameters = {
		"empty" = [1]
	}
}
path "value/empty" {
	policy = "write"
	allowed_parameters = {
		"empty" = [1]
	}
	denied_parameters = {
		"empty" = []
	}
}
`;

// Vault's permissionsPolicy, without the wrapping TTLs (of foo/bar, foo/baz, working/phone).
const permissionsPolicy = `
name = "dev"
path "dev/*" {
	policy = "write"
	allowed_parameters = {
		"zip" = []
	}
}
path "foo/bar" {
	policy = "write"
	denied_parameters = {
		"zap" = []
	}
}
path "foo/baz" {
	policy = "write"
	allowed_parameters = {
		"hello" = []
	}
	denied_parameters = {
		"zap" = []
	}
}
path "broken/phone" {
	policy = "write"
	allowed_parameters = {
	  "steve" = []
	}
	denied_parameters = {
	  "steve" = []
	}
}
path "hello/world" {
	policy = "write"
	allowed_parameters = {
		"*" = []
	}
	denied_parameters = {
		"*" = []
	}
}
path "tree/fort" {
	policy = "write"
	allowed_parameters = {
		"*" = []
	}
	denied_parameters = {
		"foo" = []
	}
}
path "fruit/apple" {
	policy = "write"
	allowed_parameters = {
		"pear" = []
	}
	denied_parameters = {
		"*" = []
	}
}
path "cold/weather" {
	policy = "write"
	allowed_parameters = {}
	denied_parameters = {}
}
path "var/aws" {
	policy = "write"
	allowed_parameters = {
		"*" = []
	}
	denied_parameters = {
		"soft" = []
		"warm" = []
		"kitty" = []
	}
}
path "var/req" {
	policy = "write"
	required_parameters = ["foo"]
}
`;

// Vault's valuePermissionsPolicy, as is.
const valuePermissionsPolicy = `
name = "op"
path "dev/*" {
	policy = "write"
	allowed_parameters = {
		"allow" = ["good"]
	}
}
path "foo/bar" {
	policy = "write"
	denied_parameters = {
		"deny" = ["bad*"]
	}
}
path "foo/baz" {
	policy = "write"
	allowed_parameters = {
		"ALLOW" = ["good"]
	}
	denied_parameters = {
		"dEny" = ["bad"]
	}
}
path "fizz/buzz" {
	policy = "write"
	allowed_parameters = {
		"allow_multi" = ["good", "good1", "good2", "*good3"]
		"allow" = ["good"]
	}
	denied_parameters = {
		"deny_multi" = ["bad", "bad1", "bad2"]
	}
}
path "test/types" {
	policy = "write"
	allowed_parameters = {
		"map" = [{"good" = "one"}]
		"int" = [1, 2]
		"bool" = [false]
	}
	denied_parameters = {
	}
}
path "test/star" {
	policy = "write"
	allowed_parameters = {
		"*" = []
		"foo" = []
		"bar" = [false]
	}
	denied_parameters = {
	}
}
`;

// Vault's grantingTestPolicy (without "recover") and grantingTestPolicyMerged.
const grantingTestPolicy = `
name = "granting_policy"
path "kv/foo" {
	capabilities = ["update", "read"]
}

path "kv/path/*" {
	capabilities = ["read"]
}

path "kv/path/longer" {
	capabilities = ["update", "read"]
}

path "kv/path/longer2" {
	capabilities = ["update"]
}

path "kv/deny" {
	capabilities = ["deny"]
}

path "ns1/kv/foo" {
	capabilities = ["update", "read"]
}
`;
const grantingTestPolicyMerged = `
name = "granting_policy_merged"
path "kv/foo" {
	capabilities = ["update", "read"]
}

path "kv/bar" {
	capabilities = ["update", "read"]
}

path "kv/path/*" {
	capabilities = ["read"]
}

path "kv/path/longer" {
	capabilities = ["read"]
}

path "kv/path/longer3" {
	capabilities = ["read"]
}

path "kv/deny" {
	capabilities = ["update"]
}
`;

describe("TestACL_Root", () => {
  it("the root ACL allows with root privileges", () => {
    const result = Acl.root().allowOperation({ path: "sys/mount/foo", operation: "update" });
    expect(result.allowed).toBe(true);
    expect(result.sudo).toBe(true);
    expect(result.isRoot).toBe(true);
  });
});

describe("TestACL_Capabilities", () => {
  it('root: every capability (Vault answers ["root"])', () => {
    expect(Acl.root().capabilities("any/path")).toEqual(
      new Set<Capability>(["create", "read", "update", "patch", "delete", "list", "sudo"]),
    );
  });

  it.each([
    ["dev", ["deny"]],
    ["dev/", ["sudo", "read", "list", "update", "delete", "create"]],
    ["stage/aws/test", ["sudo", "read", "list", "update"]],
  ] as const)("capabilities(%s)", async (path, expected) => {
    expect((await aclOf(aclPolicy)).capabilities(path)).toEqual(new Set(expected));
  });
});

describe("TestACL_Single", () => {
  it("a read of sys/mount/foo has no root privileges", async () => {
    expect((await aclOf(aclPolicy)).allowOperation({ path: "sys/mount/foo", operation: "read" }).sudo).toBe(false);
  });
});
table("TestACL_Single", () => [aclPolicy], [
  { operation: "read", path: "root", allowed: false, sudo: false },
  { operation: "read", path: "dev/foo", allowed: true, sudo: true },
  { operation: "update", path: "dev/foo", allowed: true, sudo: true },
  { operation: "delete", path: "stage/foo", allowed: true, sudo: false },
  { operation: "list", path: "stage/aws/foo", allowed: true, sudo: true },
  { operation: "update", path: "stage/aws/foo", allowed: true, sudo: true },
  { operation: "update", path: "stage/aws/policy/foo", allowed: true, sudo: true },
  { operation: "delete", path: "prod/foo", allowed: false, sudo: false },
  { operation: "update", path: "prod/foo", allowed: false, sudo: false },
  { operation: "read", path: "prod/foo", allowed: true, sudo: false },
  { operation: "list", path: "prod/foo", allowed: true, sudo: false },
  { operation: "read", path: "prod/aws/foo", allowed: false, sudo: false },
  { operation: "read", path: "foo/bar", allowed: true, sudo: true },
  { operation: "list", path: "foo/bar", allowed: false, sudo: true },
  { operation: "update", path: "foo/bar", allowed: false, sudo: true },
  { operation: "create", path: "foo/bar", allowed: true, sudo: true },
  { operation: "read", path: "baz/quux", allowed: true, sudo: false },
  { operation: "create", path: "baz/quux", allowed: true, sudo: false },
  { operation: "patch", path: "baz/quux", allowed: true, sudo: false },
  { operation: "list", path: "baz/quux", allowed: false, sudo: false },
  { operation: "update", path: "baz/quux", allowed: false, sudo: false },
  // Path segment wildcards
  { operation: "read", path: "test/foo/bar/segment", allowed: false, sudo: false },
  { operation: "read", path: "test/foo/segment", allowed: true, sudo: false },
  { operation: "read", path: "test/bar/segment", allowed: true, sudo: false },
  { operation: "read", path: "test/segment/at/frond", allowed: false, sudo: false },
  { operation: "read", path: "test/segment/at/front", allowed: true, sudo: false },
  { operation: "read", path: "test/segment/at/end/foo", allowed: true, sudo: false },
  { operation: "read", path: "test/segment/at/end/foo/", allowed: false, sudo: false },
  { operation: "read", path: "test/segment/at/end/v2/foo/", allowed: true, sudo: false },
  { operation: "read", path: "test/segment/wildcard/at/foo/", allowed: true, sudo: false },
  { operation: "read", path: "test/segment/wildcard/at/end", allowed: true, sudo: false },
  { operation: "read", path: "test/segment/wildcard/at/end/", allowed: true, sudo: false },
  // Path segment wildcards vs glob
  { operation: "read", path: "1/2/3/4", allowed: false, sudo: false },
  { operation: "read", path: "1/2/3", allowed: true, sudo: false },
  { operation: "update", path: "1/2/3", allowed: false, sudo: false },
  { operation: "update", path: "1/2/3/4", allowed: true, sudo: false },
  { operation: "create", path: "1/2/3/4/5", allowed: true, sudo: false },
]);

table("TestACL_Layered", () => [aclPolicy, aclPolicy2], [
  { operation: "read", path: "sys/mount/foo", allowed: false, sudo: false },
  { operation: "read", path: "root", allowed: false, sudo: false },
  { operation: "read", path: "dev/foo", allowed: true, sudo: true },
  { operation: "update", path: "dev/foo", allowed: true, sudo: true },
  { operation: "read", path: "dev/hide/foo", allowed: false, sudo: false },
  { operation: "update", path: "dev/hide/foo", allowed: false, sudo: false },
  { operation: "delete", path: "stage/foo", allowed: true, sudo: false },
  { operation: "list", path: "stage/aws/foo", allowed: true, sudo: true },
  { operation: "update", path: "stage/aws/foo", allowed: true, sudo: true },
  { operation: "update", path: "stage/aws/policy/foo", allowed: false, sudo: false },
  { operation: "delete", path: "prod/foo", allowed: true, sudo: false },
  { operation: "update", path: "prod/foo", allowed: true, sudo: false },
  { operation: "read", path: "prod/foo", allowed: true, sudo: false },
  { operation: "list", path: "prod/foo", allowed: true, sudo: false },
  { operation: "read", path: "prod/aws/foo", allowed: false, sudo: false },
  { operation: "read", path: "sys/status", allowed: false, sudo: false },
  { operation: "update", path: "sys/seal", allowed: true, sudo: true },
  { operation: "read", path: "foo/bar", allowed: false, sudo: false },
  { operation: "list", path: "foo/bar", allowed: false, sudo: false },
  { operation: "update", path: "foo/bar", allowed: false, sudo: false },
  { operation: "create", path: "foo/bar", allowed: false, sudo: false },
  { operation: "read", path: "baz/quux", allowed: false, sudo: false },
  { operation: "list", path: "baz/quux", allowed: false, sudo: false },
  { operation: "update", path: "baz/quux", allowed: false, sudo: false },
  { operation: "create", path: "baz/quux", allowed: false, sudo: false },
  { operation: "patch", path: "baz/quux", allowed: false, sudo: false },
]);

describe("TestACL_ParseMalformedPolicy", () => {
  it("name{} is refused", async () => {
    await expect(parsePolicy("p", `name{}`)).rejects.toThrow(VaultError);
  });
});

// TestACL_PolicyMerge inspects the merged ACLPermissions; here the merged constraints are
// checked by their effect (update and create, as Vault's parameter tests do).
const mergeRows: Array<Omit<Row, "operation">> = [
  // foo/bar: denied {baz: [], zip: []}, required [baz]
  { path: "foo/bar", data: { baz: "x" }, allowed: false },
  { path: "foo/bar", data: { zip: "x", baz: "x" }, allowed: false },
  { path: "foo/bar", data: { other: "x" }, allowed: false },
  { path: "foo/bar", data: {}, allowed: false },
  // hello/universe: allowed {foo: [], bar: []}, required [foo, bar]
  { path: "hello/universe", data: { foo: 1, bar: 2 }, allowed: true },
  { path: "hello/universe", data: { foo: 1 }, allowed: false },
  { path: "hello/universe", data: { bar: 2 }, allowed: false },
  { path: "hello/universe", data: { foo: 1, bar: 2, baz: 3 }, allowed: false },
  // allow/all and allow/all1: allowed {*: [], test: [], test1: [foo]}
  ...["allow/all", "allow/all1"].flatMap((path) => [
    { path, data: { anything: 1 }, allowed: true },
    { path, data: { test: "x" }, allowed: true },
    { path, data: { test1: "foo" }, allowed: true },
    { path, data: { test1: "bar" }, allowed: false },
  ]),
  // deny/all and deny/all1: denied {*: [], test: []}
  ...["deny/all", "deny/all1"].flatMap((path) => [
    { path, data: { anything: 1 }, allowed: false },
    { path, data: { test: 1 }, allowed: false },
    { path, data: {}, allowed: true },
  ]),
  // value/merge: allowed and denied {test: [3, 4, 1, 2]}
  ...[1, 2, 3, 4, 5].map((value) => ({ path: "value/merge", data: { test: value }, allowed: false })),
  // value/empty: allowed {empty: []}, denied {empty: []}
  { path: "value/empty", data: { empty: 1 }, allowed: false },
  { path: "value/empty", data: { empty: 2 }, allowed: false },
  { path: "value/empty", data: { other: 2 }, allowed: false },
];
table(
  "TestACL_PolicyMerge (by effect)",
  () => [mergingPolicies],
  mergeRows.flatMap((row) => (["update", "create"] as const).map((operation) => ({ ...row, operation }))),
);

describe("TestACL_PolicyMerge / TestACL_AllowOperation: the wrapping TTLs", () => {
  // Vault's hello/universe stanzas of mergingPolicies, with their wrapping TTLs: merged, the
  // lesser minimum and the lesser maximum remain.
  const withTtls = `path "hello/universe" {\n\tpolicy = "write"\n\tmax_wrapping_ttl = 300\n\tmin_wrapping_ttl = 100\n}
path "hello/universe" {\n\tpolicy = "write"\n\tmax_wrapping_ttl = 200\n\tmin_wrapping_ttl = 50\n}`;

  it("merges min_wrapping_ttl / max_wrapping_ttl as Vault does (the lesser of each)", async () => {
    const acl = await aclOf(withTtls);
    const result = acl.allowOperation({ path: "hello/universe", operation: "update" }, true);
    expect(result.minWrappingTtlMs).toBe(50_000);
    expect(result.maxWrappingTtlMs).toBe(200_000);
  });

  it("a request is allowed only when wrapped within the merged bounds (Vault's AllowOperation)", async () => {
    const acl = await aclOf(withTtls);
    const bounds = acl.allowOperation({ path: "hello/universe", operation: "update" }, true);
    expect(wrappingTtlAllowed(bounds, undefined)).toBe(false);
    expect(wrappingTtlAllowed(bounds, 49_000)).toBe(false);
    expect(wrappingTtlAllowed(bounds, 50_000)).toBe(true);
    expect(wrappingTtlAllowed(bounds, 200_000)).toBe(true);
    expect(wrappingTtlAllowed(bounds, 201_000)).toBe(false);
    // A merged minimum above the merged maximum allows nothing.
    expect(wrappingTtlAllowed({ minWrappingTtlMs: 300_000, maxWrappingTtlMs: 200_000 }, 250_000)).toBe(false);
    // No bounds: wrapped or not.
    const free = (await aclOf(`path "x" { capabilities = ["read"] }`)).allowOperation({ path: "x", operation: "read" }, true);
    expect(wrappingTtlAllowed(free, undefined)).toBe(true);
    expect(wrappingTtlAllowed(free, 1000)).toBe(true);
  });
});

// TestACL_AllowOperation: each named parameter sent with the value "".
const allowOperationRows: Array<[string, string[], boolean]> = [
  ["dev/ops", ["zip"], true],
  ["foo/bar", ["zap"], false],
  ["foo/baz", ["zap"], false],
  ["broken/phone", ["steve"], false],
  ["hello/world", ["one"], false],
  ["tree/fort", ["one"], true],
  ["tree/fort", ["foo"], false],
  ["fruit/apple", ["pear"], false],
  ["fruit/apple", ["one"], false],
  ["cold/weather", ["four"], true],
  ["var/aws", ["cold", "warm", "kitty"], false],
  ["var/req", ["cold", "warm", "kitty"], false],
  ["var/req", ["cold", "warm", "kitty", "foo"], true],
];
table(
  "TestACL_AllowOperation",
  () => [permissionsPolicy],
  allowOperationRows.flatMap(([path, parameters, allowed]) =>
    (["update", "create"] as const).map((operation) => ({
      path,
      operation,
      data: Object.fromEntries(parameters.map((name) => [name, ""])),
      allowed,
    })),
  ),
);

// TestACL_ValuePermissions: parameter names and values sent together.
const valueRows: Array<[string, string[], unknown[], boolean]> = [
  ["dev/ops", ["allow"], ["good"], true],
  ["dev/ops", ["allow"], ["bad"], false],
  ["foo/bar", ["deny"], ["bad"], false],
  ["foo/bar", ["deny"], ["bad glob"], false],
  ["foo/bar", ["deny"], ["good"], true],
  ["foo/bar", ["allow"], ["good"], true],
  ["foo/bar", ["deny"], [null], true],
  ["foo/bar", ["allow"], [null], true],
  ["foo/baz", ["aLLow"], ["good"], true],
  ["foo/baz", ["deny"], ["bad"], false],
  ["foo/baz", ["deny"], ["good"], false],
  ["foo/baz", ["allow", "deny"], ["good", "bad"], false],
  ["foo/baz", ["deny", "allow"], ["good", "bad"], false],
  ["foo/baz", ["deNy", "allow"], ["bad", "good"], false],
  ["foo/baz", ["aLLow"], ["bad"], false],
  ["foo/baz", ["Neither"], ["bad"], false],
  ["foo/baz", ["allow"], [null], false],
  ["fizz/buzz", ["allow_multi"], ["good"], true],
  ["fizz/buzz", ["allow_multi"], ["good1"], true],
  ["fizz/buzz", ["allow_multi"], ["good2"], true],
  ["fizz/buzz", ["allow_multi"], ["glob good2"], false],
  ["fizz/buzz", ["allow_multi"], ["glob good3"], true],
  ["fizz/buzz", ["allow_multi"], ["bad"], false],
  ["fizz/buzz", ["allow_multi", "allow"], ["good1", "good"], true],
  ["fizz/buzz", ["deny_multi"], ["bad2"], false],
  ["fizz/buzz", ["deny_multi", "allow_multi"], ["good", "good2"], false],
  ["test/types", ["map"], [{ good: "one" }], true],
  ["test/types", ["map"], [{ bad: "one" }], false],
  ["test/types", ["int"], [1], true],
  ["test/types", ["int"], [3], false],
  ["test/types", ["bool"], [false], true],
  ["test/types", ["bool"], [true], false],
  ["test/star", ["anything"], [true], true],
  ["test/star", ["foo"], [true], true],
  ["test/star", ["bar"], [false], true],
  ["test/star", ["bar"], [true], false],
];
table(
  "TestACL_ValuePermissions",
  () => [valuePermissionsPolicy],
  valueRows.flatMap(([path, parameters, values, allowed]) =>
    (["update", "create"] as const).map((operation) => ({
      path,
      operation,
      data: Object.fromEntries(parameters.map((name, i) => [name, values[i]])),
      allowed,
    })),
  ),
);

describe("TestACL_SegmentWildcardPriority", () => {
  // Each: a read rule and an update rule, the update rule winning by being more specific.
  const cases: Array<[string, string]> = [
    [`path "+/*" { capabilities = ["read"] }\npath "*" { capabilities = ["update"] }`, "foo/bar/bar/baz"],
    [`path "+/*" { capabilities = ["read"] }\npath "foo/+/*" { capabilities = ["update"] }`, "foo/bar/bar/baz"],
    [`path "foo/+/+/*" { capabilities = ["read"] }\npath "foo/+/bar/baz" { capabilities = ["update"] }`, "foo/bar/bar/baz"],
    [`path "foo/+/+/baz" { capabilities = ["read"] }\npath "foo/+/bar/baz" { capabilities = ["update"] }`, "foo/bar/bar/baz"],
    [`path "foo/+/(ar/baz" { capabilities = ["read"] }\npath "foo/(ar/+/baz" { capabilities = ["update"] }`, "foo/(ar/(ar/baz"],
    [`path "foo/bar/+/baz*" { capabilities = ["read"] }\npath "foo/bar/+/baz" { capabilities = ["update"] }`, "foo/bar/bar/baz"],
    [`path "foo/bar/+/b*" { capabilities = ["read"] }\npath "foo/bar/+/ba*" { capabilities = ["update"] }`, "foo/bar/bar/baz"],
  ];
  it.each(cases)("%s on %s", async (policy, path) => {
    const acl = await aclOf(policy);
    expect(acl.allowOperation({ path, operation: "update" }).allowed).toBe(true);
    expect(acl.allowOperation({ path, operation: "read" }).allowed).toBe(false);
  });
});

describe("TestACL_SegmentWildcardPriority_BareMount (through hasMountAccess)", () => {
  const cases: Array<[string, string, boolean]> = [
    [`path "+" { capabilities = ["read"] }`, "foo/", true],
    [`path "+/*" { capabilities = ["read"] }`, "foo/", true],
    [`path "foo/+/+/*" { capabilities = ["read"] }`, "foo/", true],
    [`path "foo/+/+/*" { capabilities = ["read"] }`, "foo/bar/", true],
    [`path "foo/+/+/*" { capabilities = ["read"] }`, "foo/bar/bar/", true],
    [`path "foo/+/+/*" { capabilities = ["read"] }`, "foo/bar/bar/baz/", true],
    [`path "foo/+/+/baz" { capabilities = ["read"] }`, "foo/bar/bar/baz/", true],
    [`path "foo/+/bar/baz" { capabilities = ["read"] }`, "foo/bar/bar/baz/", true],
    [`path "foo/bar/+/baz*" { capabilities = ["read"] }`, "foo/bar/bar/baz/", true],
    [`path "foo/bar/+/b*" { capabilities = ["read"] }`, "foo/bar/bar/baz/", true],
    [`path "foo/+" { capabilities = ["read"] }`, "foo/", true],
    // Not in Vault's table: rules that do not reach the mount, or deny.
    [`path "foo/+" { capabilities = ["deny"] }`, "foo/", false],
    [`path "bar/+" { capabilities = ["read"] }`, "foo/", false],
    [`path "foo/+/baz" { capabilities = ["read"] }`, "foo/bar/qux/", false],
  ];
  it.each(cases)("%s, mount %s → %s", async (policy, mount, expected) => {
    expect((await aclOf(policy)).hasMountAccess(mount)).toBe(expected);
  });
});

describe("TestACL_CreationRace (as it applies here)", () => {
  it("building ACLs does not modify the parsed policies they are built from", async () => {
    // Vault's test builds ACLs from one parsed policy concurrently; here the risk is the merge
    // writing into the (cached, shared) parsed policy: it must copy.
    const policies = await policiesOf([mergingPolicies, valuePermissionsPolicy, mergingPolicies]);
    const snapshot = structuredClone(policies);
    const first = Acl.fromPolicies(policies);
    const second = Acl.fromPolicies(policies);
    expect(policies).toEqual(snapshot);
    for (const acl of [first, second]) {
      expect(acl.allowOperation({ path: "allow/all", operation: "update", data: { test1: "bar" } }).allowed).toBe(false);
      expect(acl.allowOperation({ path: "hello/universe", operation: "update", data: { foo: 1, bar: 2 } }).allowed).toBe(true);
    }
  });
});

table("TestACLGrantingPolicies (allowed only: Egide does not report granting policies)", () => [grantingTestPolicy], [
  { operation: "read", path: "kv/foo", allowed: true },
  { operation: "update", path: "kv/foo", allowed: true },
  { operation: "read", path: "kv/bad", allowed: false },
  { operation: "read", path: "kv/deny", allowed: false },
  { operation: "read", path: "kv/path/foo", allowed: true },
  { operation: "read", path: "kv/path/longer", allowed: true },
]);
table("TestACLGrantingPolicies, merged", () => [grantingTestPolicy, grantingTestPolicyMerged], [
  { operation: "read", path: "kv/foo", allowed: true },
  { operation: "read", path: "kv/path/longer3", allowed: true },
  { operation: "read", path: "kv/bar", allowed: true },
  { operation: "read", path: "kv/deny", allowed: false },
  { operation: "update", path: "kv/path/longer", allowed: true },
  { operation: "read", path: "kv/path/foo", allowed: true },
]);

// The LIST cases of Vault's current AllowOperation: an exact rule on the path or on the path
// without its trailing slash; then the wildcard candidates of both forms ranked together, the
// most specific deny winning over a less specific list grant.
table(
  "LIST: a denied subtree's root (secret/metadata/* list, secret/metadata/admin/* deny, two policies)",
  () => [`path "secret/metadata/*" { capabilities = ["list"] }`, `path "secret/metadata/admin/*" { capabilities = ["deny"] }`],
  [
    { operation: "list", path: "secret/metadata/admin/", allowed: false },
    { operation: "list", path: "secret/metadata/admin/sub/", allowed: false },
    { operation: "list", path: "secret/metadata/", allowed: true },
    { operation: "list", path: "secret/metadata/app/", allowed: true },
    { operation: "list", path: "secret/metadata/administrators/", allowed: true },
  ],
);
table(
  "LIST: the same in one policy, and a + deny outranked by the glob",
  () => [
    `path "secret/metadata/*" { capabilities = ["list"] }
path "secret/metadata/admin/*" { capabilities = ["deny"] }
path "secret/metadata/+/private/*" { capabilities = ["deny"] }`,
  ],
  [
    { operation: "list", path: "secret/metadata/admin/", allowed: false },
    // Vault's priority: at the same first-wildcard position, fewer + segments win, so
    // secret/metadata/* outranks secret/metadata/+/private/* (for any operation).
    { operation: "list", path: "secret/metadata/team/private/", allowed: true },
    { operation: "list", path: "secret/metadata/team/private/x/", allowed: true },
    { operation: "list", path: "secret/metadata/team/", allowed: true },
  ],
);
table(
  "LIST: kv1/+ grants the list of kv1/private/ through the trimmed form; a deny on kv1/private/* wins",
  () => [
    `path "kv1/+" { capabilities = ["list"] }`,
    `path "kv2/+" { capabilities = ["list"] }\npath "kv2/private/*" { capabilities = ["deny"] }`,
  ],
  [
    { operation: "list", path: "kv1/private/", allowed: true },
    { operation: "list", path: "kv2/private/", allowed: false },
    { operation: "list", path: "kv2/public/", allowed: true },
    { operation: "list", path: "kv1/", allowed: true },
  ],
);
table(
  "LIST: wildcard rules without the trailing slash (VAULT-3825) and exact rules on the trimmed path",
  () => [
    `path "+/sys/policies/acl" { capabilities = ["list"] }
path "+/sys/roles/" { capabilities = ["list"] }
path "auth/approle/role" { capabilities = ["list"] }`,
  ],
  [
    { operation: "list", path: "ns1/sys/policies/acl/", allowed: true },
    { operation: "list", path: "ns1/sys/roles/", allowed: true },
    { operation: "list", path: "auth/approle/role/", allowed: true },
    { operation: "list", path: "auth/approle/role", allowed: true },
    { operation: "read", path: "auth/approle/role/", allowed: false },
  ],
);
table(
  "LIST: a less specific deny does not override a more specific list grant",
  () => [`path "secret/*" { capabilities = ["deny"] }\npath "secret/app/*" { capabilities = ["list"] }`],
  [
    { operation: "list", path: "secret/app/", allowed: true },
    { operation: "list", path: "secret/other/", allowed: false },
  ],
);
table(
  "LIST: an exact rule on the full path wins over everything",
  () => [`path "secret/admin/" { capabilities = ["list"] }\npath "secret/admin/*" { capabilities = ["deny"] }`],
  [
    { operation: "list", path: "secret/admin/", allowed: true },
    { operation: "list", path: "secret/admin/x/", allowed: false },
  ],
);

describe("LIST: capabilities() (sys/capabilities) resolves as a list", () => {
  it("the denied subtree's root reports deny", async () => {
    const acl = await aclOf(
      `path "secret/metadata/*" { capabilities = ["list", "read"] }`,
      `path "secret/metadata/admin/*" { capabilities = ["deny"] }`,
    );
    expect(acl.capabilities("secret/metadata/admin/")).toEqual(new Set(["deny"]));
    expect(acl.capabilities("secret/metadata/admin")).toEqual(new Set(["read", "list"]));
    expect(acl.capabilities("secret/metadata/")).toEqual(new Set(["read", "list"]));
  });
});

table(
  "+ matches any one segment, the empty one included (as Vault)",
  () => [`path "secret/+" { capabilities = ["read"] }\npath "kv/+/config" { capabilities = ["update"] }`],
  [
    { operation: "read", path: "secret/a", allowed: true },
    { operation: "read", path: "secret/", allowed: true },
    { operation: "read", path: "secret", allowed: false },
    { operation: "read", path: "secret/a/b", allowed: false },
    { operation: "update", path: "kv//config", allowed: true },
    { operation: "update", path: "kv/a/config", allowed: true },
    { operation: "update", path: "kv/config", allowed: false },
  ],
);
