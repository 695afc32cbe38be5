import { describe, expect, it } from "vitest";
import { VaultError } from "../src/http/vault-error.js";
import { DEFAULT_POLICY_HCL } from "../src/policy/default-policies.js";
import { parsePolicy } from "../src/policy/parse-policy.js";
import { normalizePolicyName } from "../src/policy/policy.js";

/** The 400 message `parsePolicy` throws for `text`. */
async function parseError(text: string, name = "p"): Promise<string> {
  try {
    await parsePolicy(name, text);
  } catch (error) {
    expect(error).toBeInstanceOf(VaultError);
    expect((error as VaultError).status).toBe(400);
    return (error as VaultError).errors.join("; ");
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

describe("parsePolicy: HCL", () => {
  it("parses path stanzas with their capabilities, keeping the raw text", async () => {
    const text = `
# a comment
path "secret/data/app" {
  capabilities = ["read", "update"]
}
// another
path "secret/metadata/*" { capabilities = ["list"] }
/* block comment */
path "secret/+/config" {
  capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"]
}
`;
    const policy = await parsePolicy("App", text);
    expect(policy.name).toBe("app");
    expect(policy.raw).toBe(text);
    expect(policy.format).toBe("hcl");
    // HCL stanzas come out sorted by path.
    expect(policy.rules).toEqual([
      {
        path: "secret/+/config",
        capabilities: ["create", "read", "update", "patch", "delete", "list", "sudo"],
        prefix: false,
        segmentWildcards: true,
        segments: ["secret", "+", "config"],
      },
      { path: "secret/data/app", capabilities: ["read", "update"], prefix: false, segmentWildcards: false },
      { path: "secret/metadata/*", capabilities: ["list"], prefix: true, segmentWildcards: false },
    ]);
  });

  it("orders and deduplicates capabilities; deny absorbs the others", async () => {
    const policy = await parsePolicy("p", `path "a" { capabilities = ["list", "read", "list"] }\npath "b" { capabilities = ["read", "deny", "sudo"] }`);
    expect(policy.rules[0]?.capabilities).toEqual(["read", "list"]);
    expect(policy.rules[1]?.capabilities).toEqual(["deny"]);
  });

  it("keeps repeated stanzas for the same path (merged when the ACL is built)", async () => {
    const policy = await parsePolicy("p", `path "a/*" { capabilities = ["read"] }\npath "a/*" { capabilities = ["list"] }`);
    expect(policy.rules.map((rule) => [rule.path, rule.capabilities])).toEqual([
      ["a/*", ["read"]],
      ["a/*", ["list"]],
    ]);
  });

  it("strips one leading slash, as Vault does", async () => {
    const policy = await parsePolicy("p", `path "/secret/x" { capabilities = ["read"] }`);
    expect(policy.rules[0]?.path).toBe("secret/x");
  });

  it("marks prefix and segment-wildcard rules", async () => {
    const policy = await parsePolicy(
      "p",
      ['"*"', '"+"', '"+/a"', '"a/+/*"', '"a/+/b*"', '"secret/foo*"'].map((path) => `path ${path} {\n capabilities = ["read"]\n}`).join("\n"),
    );
    const order = ["*", "+", "+/a", "a/+/*", "a/+/b*", "secret/foo*"];
    const rules = [...policy.rules].sort((a, b) => order.indexOf(a.path) - order.indexOf(b.path));
    expect(rules.map((rule) => ({ path: rule.path, prefix: rule.prefix, seg: rule.segmentWildcards, segments: rule.segments }))).toEqual([
      { path: "*", prefix: true, seg: false, segments: undefined },
      { path: "+", prefix: false, seg: true, segments: ["+"] },
      { path: "+/a", prefix: false, seg: true, segments: ["+", "a"] },
      { path: "a/+/*", prefix: true, seg: true, segments: ["a", "+", ""] },
      { path: "a/+/b*", prefix: true, seg: true, segments: ["a", "+", "b"] },
      { path: "secret/foo*", prefix: true, seg: false, segments: undefined },
    ]);
  });

  it("accepts the old `policy = ...` shorthand", async () => {
    const policy = await parsePolicy(
      "p",
      `path "r" { policy = "read" }
path "w" { policy = "write" }
path "s" { policy = "sudo" }
path "d" { policy = "deny" }
path "rc" {
  policy = "read"
  capabilities = ["update", "sudo"]
}
path "dc" {
  policy = "deny"
  capabilities = ["read"]
}`,
    );
    expect(Object.fromEntries(policy.rules.map((rule) => [rule.path, rule.capabilities]))).toEqual({
      r: ["read", "list"],
      w: ["create", "read", "update", "delete", "list"],
      s: ["create", "read", "update", "delete", "list", "sudo"],
      d: ["deny"],
      rc: ["read", "update", "list", "sudo"],
      dc: ["deny"],
    });
  });

  it("accepts (and reports as unenforced) the parameter and wrapping fields, and comments", async () => {
    const policy = await parsePolicy(
      "p",
      `path "secret/data/app" {
  capabilities = ["create", "update"]
  comment = "app secrets"
  allowed_parameters = {
    "foo" = []
    "bar" = ["a", "b"]
  }
  denied_parameters = { "baz" = [] }
  required_parameters = ["foo"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = 90
}`,
    );
    expect(policy.rules[0]?.capabilities).toEqual(["create", "update"]);
    expect(policy.rules[0]?.unenforced).toEqual(["allowed_parameters", "denied_parameters", "max_wrapping_ttl", "min_wrapping_ttl", "required_parameters"]);
  });

  it("accepts the attribute form path = { ... } and a top-level name", async () => {
    const policy = await parsePolicy("p", `name = "ignored"\npath = {\n  "a/*" = { capabilities = ["read"] }\n}`);
    expect(policy.name).toBe("p");
    expect(policy.rules).toEqual([{ path: "a/*", capabilities: ["read"], prefix: true, segmentWildcards: false }]);
  });

  it("accepts an empty policy (no stanzas grants nothing)", async () => {
    expect((await parsePolicy("p", "")).rules).toEqual([]);
    expect((await parsePolicy("p", "# nothing\n")).rules).toEqual([]);
  });

  it("parses many policies concurrently", async () => {
    const texts = Array.from({ length: 50 }, (_, i) => `path "p/${i}" { capabilities = ["read"] }`);
    const policies = await Promise.all(texts.map((text, i) => parsePolicy(`p${i}`, text)));
    expect(policies.map((policy) => policy.rules[0]?.path)).toEqual(texts.map((_, i) => `p/${i}`));
  });

  it("parses the built-in default policy", async () => {
    const policy = await parsePolicy("default", DEFAULT_POLICY_HCL);
    const byPath = Object.fromEntries(policy.rules.map((rule) => [rule.path, rule.capabilities]));
    expect(byPath["auth/token/lookup-self"]).toEqual(["read"]);
    expect(byPath["auth/token/renew-self"]).toEqual(["update"]);
    expect(byPath["auth/token/revoke-self"]).toEqual(["update"]);
    expect(byPath["sys/capabilities-self"]).toEqual(["update"]);
  });
});

describe("parsePolicy: JSON", () => {
  it("parses Vault's JSON form", async () => {
    const text = JSON.stringify({ path: { "secret/*": { capabilities: ["read"] }, "secret/+/x": { capabilities: ["deny"] } } });
    const policy = await parsePolicy("j", text);
    expect(policy.format).toBe("json");
    expect(policy.raw).toBe(text);
    expect(policy.rules).toEqual([
      { path: "secret/*", capabilities: ["read"], prefix: true, segmentWildcards: false },
      { path: "secret/+/x", capabilities: ["deny"], prefix: false, segmentWildcards: true, segments: ["secret", "+", "x"] },
    ]);
  });

  it("detects JSON after leading whitespace and accepts HCL 1's list forms", async () => {
    const lists = `  \n{"path": [{"a": {"capabilities": ["read"]}}, {"b": [{"capabilities": ["list"]}, {"policy": "write"}]}]}`;
    const policy = await parsePolicy("j", lists);
    expect(policy.format).toBe("json");
    expect(policy.rules.map((rule) => [rule.path, rule.capabilities])).toEqual([
      ["a", ["read"]],
      ["b", ["list"]],
      ["b", ["create", "read", "update", "delete", "list"]],
    ]);
  });

  it("accepts the unenforced fields in JSON too", async () => {
    const policy = await parsePolicy("j", JSON.stringify({ path: { a: { capabilities: ["update"], allowed_parameters: { x: [] } } } }));
    expect(policy.rules[0]?.unenforced).toEqual(["allowed_parameters"]);
  });

  it("treats keys such as __proto__ as plain paths", async () => {
    const policy = await parsePolicy("j", `{"path": {"__proto__": {"capabilities": ["read"]}, "constructor": {"capabilities": ["list"]}}}`);
    expect(policy.rules.map((rule) => [rule.path, rule.capabilities])).toEqual([
      ["__proto__", ["read"]],
      ["constructor", ["list"]],
    ]);
  });

  it("accepts an empty JSON policy", async () => {
    expect((await parsePolicy("j", "{}")).rules).toEqual([]);
  });
});

describe("parsePolicy: errors (400, naming the path or capability)", () => {
  it("refuses unparsable HCL with the parser's position", async () => {
    const message = await parseError(`path "a" {\n  capabilities = ["read"]\n`);
    expect(message).toMatch(/^failed to parse policy: policy\.hcl:\d+,\d+-\d+: Unclosed configuration block/);
    expect(await parseError(`path "a" { capabilities = ["read" }`)).toMatch(/^failed to parse policy: policy\.hcl:1,\d+-\d+: Missing item separator/);
    expect(await parseError(`name{}`)).toBe('failed to parse policy: "name" must be a string');
  });

  it("refuses unparsable JSON", async () => {
    expect(await parseError(`{"path": {"a": `)).toMatch(/^failed to parse policy: invalid JSON: /);
  });

  it("refuses a JSON document that is not an object", async () => {
    // A text starting with "[" is HCL (Vault decides on "{"), and HCL refuses it.
    expect(await parseError(`[1, 2]`)).toMatch(/^failed to parse policy: /);
  });

  it("refuses an unknown capability, naming it and the path", async () => {
    expect(await parseError(`path "secret/*" { capabilities = ["raed"] }`)).toBe('failed to parse policy: path "secret/*": invalid capability "raed"');
    expect(await parseError(`path "a" { capabilities = ["read", "root"] }`)).toBe('failed to parse policy: path "a": invalid capability "root"');
    expect(await parseError(JSON.stringify({ path: { a: { capabilities: ["read", 3] } } }))).toBe('failed to parse policy: path "a": invalid capability 3');
    expect(await parseError(JSON.stringify({ path: { a: { capabilities: ["Read"] } } }))).toBe('failed to parse policy: path "a": invalid capability "Read"');
  });

  it("refuses an empty or missing capability list", async () => {
    expect(await parseError(`path "a" { capabilities = [] }`)).toBe('failed to parse policy: path "a": no capabilities given (add capabilities = [...], or ["deny"] to deny)');
    expect(await parseError(`path "a" {}`)).toMatch(/^failed to parse policy: path "a": no capabilities given/);
    expect(await parseError(`path "a" { comment = "nothing" }`)).toMatch(/^failed to parse policy: path "a": no capabilities given/);
    expect(await parseError(JSON.stringify({ path: { a: {} } }))).toMatch(/^failed to parse policy: path "a": no capabilities given/);
    expect(await parseError(JSON.stringify({ path: { a: [] } }))).toBe('failed to parse policy: path "a": no rules given');
  });

  it("refuses capabilities that are not a list", async () => {
    expect(await parseError(`path "a" { capabilities = "read" }`)).toMatch(/^failed to parse policy: path "a": "capabilities" must be a list of strings/);
  });

  it("refuses an unknown old-style policy", async () => {
    expect(await parseError(`path "a" { policy = "admin" }`)).toBe('failed to parse policy: path "a": invalid policy "admin"');
    expect(await parseError(`path "a" { policy = "constructor" }`)).toBe('failed to parse policy: path "a": invalid policy "constructor"');
    expect(await parseError(JSON.stringify({ path: { a: { policy: ["read"] } } }))).toBe('failed to parse policy: path "a": invalid policy ["read"]');
  });

  it("refuses a * anywhere but at the end", async () => {
    expect(await parseError(`path "secret/*/x" { capabilities = ["read"] }`)).toBe("failed to parse policy: path \"secret/*/x\": the glob '*' is only allowed at the end of a path");
    expect(await parseError(`path "a*b" { capabilities = ["read"] }`)).toMatch(/path "a\*b": the glob '\*' is only allowed at the end/);
    expect(await parseError(`path "**" { capabilities = ["read"] }`)).toMatch(/path "\*\*": the glob '\*' is only allowed at the end/);
  });

  it("refuses +* as Vault does", async () => {
    expect(await parseError(`path "a/+*" { capabilities = ["read"] }`)).toBe("failed to parse policy: path \"a/+*\": invalid use of wildcards ('+*' is forbidden)");
  });

  it("refuses an empty path", async () => {
    expect(await parseError(`path "" { capabilities = ["read"] }`)).toBe('failed to parse policy: path "": the path must not be empty');
    expect(await parseError(`path "/" { capabilities = ["read"] }`)).toBe('failed to parse policy: path "/": the path must not be empty');
    expect(await parseError(JSON.stringify({ path: { "": { capabilities: ["read"] } } }))).toBe('failed to parse policy: path "": the path must not be empty');
  });

  it("refuses unknown keys, at the top level and in a stanza", async () => {
    expect(await parseError(`foo = 1`)).toMatch(/^failed to parse policy: invalid key "foo"/);
    expect(await parseError(`path "a" {\n  capabilities = ["read"]\n  bogus = true\n}`)).toBe('failed to parse policy: path "a": invalid key "bogus"');
    expect(await parseError(JSON.stringify({ paths: {} }))).toMatch(/^failed to parse policy: invalid key "paths"/);
  });

  it("refuses the Enterprise-only fields rather than ignoring them", async () => {
    expect(await parseError(`path "a" {\n  capabilities = ["read"]\n  mfa_methods = ["m"]\n}`)).toBe(
      'failed to parse policy: path "a": "mfa_methods" is a Vault Enterprise feature that Egide does not support',
    );
    expect(await parseError(JSON.stringify({ path: { a: { capabilities: ["read"], control_group: {} } } }))).toMatch(/"control_group" is a Vault Enterprise feature/);
  });

  it("refuses path blocks without a label or with two", async () => {
    expect(await parseError(`path {\n  capabilities = ["read"]\n}`)).toMatch(/^failed to parse policy: "path" must be a block with the path as its label/);
    expect(await parseError(`path "a" "b" {\n  capabilities = ["read"]\n}`)).toBe('failed to parse policy: path "a": invalid key "b"');
  });

  it("refuses a stanza that is not an object", async () => {
    expect(await parseError(JSON.stringify({ path: { a: "read" } }))).toMatch(/^failed to parse policy: path "a": the rules must be an object/);
    expect(await parseError(JSON.stringify({ path: "a" }))).toMatch(/^failed to parse policy: "path" must be an object/);
  });

  it("refuses invalid policy names", async () => {
    expect(await parseError(`path "a" { capabilities = ["read"] }`, "bad name")).toMatch(/^invalid policy name "bad name"/);
    expect(await parseError(`path "a" { capabilities = ["read"] }`, "")).toBe("policy name must be provided in the URL");
  });
});

describe("normalizePolicyName", () => {
  it("lower-cases and trims, as Vault does", () => {
    expect(normalizePolicyName("  My-Policy_1.x ")).toBe("my-policy_1.x");
  });

  it("refuses characters outside [a-z0-9._-], dot names, and names over 128 characters", () => {
    for (const name of ["a/b", "a b", "é", "a*", "a+b", ".", "..", "x".repeat(129), "", "   "]) {
      expect(() => normalizePolicyName(name), name).toThrow(VaultError);
    }
    expect(normalizePolicyName("x".repeat(128))).toBe("x".repeat(128));
    expect(normalizePolicyName("...")).toBe("...");
  });
});
