import { describe, expect, it } from "vitest";
import { VaultError } from "../src/http/vault-error.js";
import { DEFAULT_POLICY_HCL } from "../src/policy/default-policies.js";
import { MAX_PARAMETER_VALUE_DEPTH, parsePolicy } from "../src/policy/parse-policy.js";
import { MAX_POLICY_BYTES, MAX_POLICY_PATHS, canonicalPolicyName, validatePolicyName } from "../src/policy/policy.js";

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
    const policy = await parsePolicy("app", text);
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
    const policy = await parsePolicy(
      "p",
      `path "a" { capabilities = ["list", "read", "list"] }\npath "b" { capabilities = ["read", "deny", "sudo"] }`,
    );
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
      ['"*"', '"+"', '"+/a"', '"a/+/*"', '"a/+/b*"', '"secret/foo*"']
        .map((path) => `path ${path} {\n capabilities = ["read"]\n}`)
        .join("\n"),
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

  it("parses the parameter constraints (names lower-cased) and comments", async () => {
    const policy = await parsePolicy(
      "p",
      `path "secret/data/app" {
  capabilities = ["create", "update"]
  comment = "app secrets"
  allowed_parameters = {
    "foo" = []
    "Bar" = ["a", "b*", 1, true, { "k" = "v" }, null]
    "*" = []
  }
  denied_parameters = { "baz" = [] }
  required_parameters = ["foo", "Qux"]
}`,
    );
    expect(policy.rules).toEqual([
      {
        path: "secret/data/app",
        capabilities: ["create", "update"],
        prefix: false,
        segmentWildcards: false,
        allowedParameters: new Map<string, unknown[]>([
          ["*", []],
          ["bar", ["a", "b*", 1, true, { k: "v" }, null]],
          ["foo", []],
        ]),
        deniedParameters: new Map([["baz", []]]),
        requiredParameters: ["foo", "Qux"],
      },
    ]);
  });

  it("accepts the block form of the parameter maps, and treats empty ones as absent", async () => {
    const policy = await parsePolicy(
      "p",
      `path "a" {
  capabilities = ["update"]
  allowed_parameters {
    foo = ["x"]
  }
  denied_parameters = {}
  required_parameters = []
}`,
    );
    expect(policy.rules).toEqual([
      { path: "a", capabilities: ["update"], prefix: false, segmentWildcards: false, allowedParameters: new Map([["foo", ["x"]]]) },
    ]);
  });

  it("keeps no parameter constraints on a deny stanza (it denies everything), as Vault", async () => {
    const policy = await parsePolicy(
      "p",
      `path "a" {
  capabilities = ["deny"]
  allowed_parameters = { "x" = [] }
  required_parameters = ["x"]
}`,
    );
    expect(policy.rules).toEqual([{ path: "a", capabilities: ["deny"], prefix: false, segmentWildcards: false }]);
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

  it("parses the parameter constraints in JSON too", async () => {
    const policy = await parsePolicy(
      "j",
      `{"path": {"a": {"capabilities": ["update"], "allowed_parameters": {"X": [], "__proto__": ["v"]}, "denied_parameters": {"y": [[1, 2]]}, "required_parameters": ["z"]}}}`,
    );
    expect(policy.rules[0]?.allowedParameters).toEqual(
      new Map<string, unknown[]>([
        ["x", []],
        ["__proto__", ["v"]],
      ]),
    );
    expect(policy.rules[0]?.deniedParameters).toEqual(new Map([["y", [[1, 2]]]]));
    expect(policy.rules[0]?.requiredParameters).toEqual(["z"]);
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
    expect(await parseError(`path "a" { capabilities = ["read" }`)).toMatch(
      /^failed to parse policy: policy\.hcl:1,\d+-\d+: Missing item separator/,
    );
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
    expect(await parseError(`path "secret/*" { capabilities = ["raed"] }`)).toBe(
      'failed to parse policy: path "secret/*": invalid capability "raed"',
    );
    expect(await parseError(`path "a" { capabilities = ["read", "root"] }`)).toBe(
      'failed to parse policy: path "a": invalid capability "root"',
    );
    expect(await parseError(JSON.stringify({ path: { a: { capabilities: ["read", 3] } } }))).toBe(
      'failed to parse policy: path "a": invalid capability 3',
    );
    expect(await parseError(JSON.stringify({ path: { a: { capabilities: ["Read"] } } }))).toBe(
      'failed to parse policy: path "a": invalid capability "Read"',
    );
  });

  it("refuses an empty or missing capability list", async () => {
    expect(await parseError(`path "a" { capabilities = [] }`)).toBe(
      'failed to parse policy: path "a": no capabilities given (add capabilities = [...], or ["deny"] to deny)',
    );
    expect(await parseError(`path "a" {}`)).toMatch(/^failed to parse policy: path "a": no capabilities given/);
    expect(await parseError(`path "a" { comment = "nothing" }`)).toMatch(/^failed to parse policy: path "a": no capabilities given/);
    expect(await parseError(JSON.stringify({ path: { a: {} } }))).toMatch(/^failed to parse policy: path "a": no capabilities given/);
    expect(await parseError(JSON.stringify({ path: { a: [] } }))).toBe('failed to parse policy: path "a": no rules given');
  });

  it("refuses capabilities that are not a list", async () => {
    expect(await parseError(`path "a" { capabilities = "read" }`)).toMatch(
      /^failed to parse policy: path "a": "capabilities" must be a list of strings/,
    );
  });

  it("refuses an unknown old-style policy", async () => {
    expect(await parseError(`path "a" { policy = "admin" }`)).toBe('failed to parse policy: path "a": invalid policy "admin"');
    expect(await parseError(`path "a" { policy = "constructor" }`)).toBe('failed to parse policy: path "a": invalid policy "constructor"');
    expect(await parseError(JSON.stringify({ path: { a: { policy: ["read"] } } }))).toBe(
      'failed to parse policy: path "a": invalid policy ["read"]',
    );
  });

  it("refuses a * anywhere but at the end", async () => {
    expect(await parseError(`path "secret/*/x" { capabilities = ["read"] }`)).toBe(
      "failed to parse policy: path \"secret/*/x\": the glob '*' is only allowed at the end of a path",
    );
    expect(await parseError(`path "a*b" { capabilities = ["read"] }`)).toMatch(/path "a\*b": the glob '\*' is only allowed at the end/);
    expect(await parseError(`path "**" { capabilities = ["read"] }`)).toMatch(/path "\*\*": the glob '\*' is only allowed at the end/);
  });

  it("refuses +* as Vault does", async () => {
    expect(await parseError(`path "a/+*" { capabilities = ["read"] }`)).toBe(
      "failed to parse policy: path \"a/+*\": invalid use of wildcards ('+*' is forbidden)",
    );
  });

  it("refuses an empty path", async () => {
    expect(await parseError(`path "" { capabilities = ["read"] }`)).toBe('failed to parse policy: path "": the path must not be empty');
    expect(await parseError(`path "/" { capabilities = ["read"] }`)).toBe('failed to parse policy: path "/": the path must not be empty');
    expect(await parseError(JSON.stringify({ path: { "": { capabilities: ["read"] } } }))).toBe(
      'failed to parse policy: path "": the path must not be empty',
    );
  });

  it("refuses unknown keys, at the top level and in a stanza", async () => {
    expect(await parseError(`foo = 1`)).toMatch(/^failed to parse policy: invalid key "foo"/);
    expect(await parseError(`path "a" {\n  capabilities = ["read"]\n  bogus = true\n}`)).toBe(
      'failed to parse policy: path "a": invalid key "bogus"',
    );
    expect(await parseError(JSON.stringify({ paths: {} }))).toMatch(/^failed to parse policy: invalid key "paths"/);
  });

  it("refuses the Enterprise-only fields rather than ignoring them", async () => {
    expect(await parseError(`path "a" {\n  capabilities = ["read"]\n  mfa_methods = ["m"]\n}`)).toBe(
      'failed to parse policy: path "a": "mfa_methods" is a Vault Enterprise feature that Egide does not support',
    );
    expect(await parseError(JSON.stringify({ path: { a: { capabilities: ["read"], control_group: {} } } }))).toMatch(
      /"control_group" is a Vault Enterprise feature/,
    );
  });

  it("refuses path blocks without a label or with two", async () => {
    expect(await parseError(`path {\n  capabilities = ["read"]\n}`)).toMatch(
      /^failed to parse policy: "path" must be a block with the path as its label/,
    );
    expect(await parseError(`path "a" "b" {\n  capabilities = ["read"]\n}`)).toBe('failed to parse policy: path "a": invalid key "b"');
  });

  it("refuses a stanza that is not an object", async () => {
    expect(await parseError(JSON.stringify({ path: { a: "read" } }))).toMatch(
      /^failed to parse policy: path "a": the rules must be an object/,
    );
    expect(await parseError(JSON.stringify({ path: "a" }))).toMatch(/^failed to parse policy: "path" must be an object/);
  });

  it("refuses invalid policy names, and names that are not canonical", async () => {
    expect(await parseError(`path "a" { capabilities = ["read"] }`, "bad name")).toMatch(/^invalid policy name "bad name"/);
    expect(await parseError(`path "a" { capabilities = ["read"] }`, "")).toBe("policy name must be provided in the URL");
    expect(await parseError(`path "a" { capabilities = ["read"] }`, "App")).toBe('invalid policy name "App": policy names are lower-case');
    expect(await parseError(`path "a" { capabilities = ["read"] }`, " app")).toMatch(/^invalid policy name " app"/);
  });

  it("parses the response-wrapping fields (durations, in ms), as Vault's ParseDurationSecond reads them", async () => {
    const policy = await parsePolicy(
      "p",
      `path "a" {
  capabilities = ["read"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = 90
}`,
    );
    expect(policy.rules[0]?.minWrappingTtlMs).toBe(1000);
    expect(policy.rules[0]?.maxWrappingTtlMs).toBe(90_000);
    const json = await parsePolicy("p", JSON.stringify({ path: { a: { capabilities: ["read"], max_wrapping_ttl: "1h" } } }));
    expect(json.rules[0]?.maxWrappingTtlMs).toBe(3_600_000);
    expect(json.rules[0]?.minWrappingTtlMs).toBeUndefined();
    // A deny stanza carries none (it denies anyway).
    const deny = await parsePolicy("p", JSON.stringify({ path: { a: { capabilities: ["deny"], max_wrapping_ttl: "1h" } } }));
    expect(deny.rules[0]?.maxWrappingTtlMs).toBeUndefined();
  });

  it("refuses malformed response-wrapping fields, and a maximum below the minimum (Vault's message)", async () => {
    expect(await parseError(`path "a" {\n  capabilities = ["read"]\n  min_wrapping_ttl = "soon"\n}`)).toBe(
      'failed to parse policy: path "a": error parsing min_wrapping_ttl: time: invalid duration "soon"',
    );
    expect(await parseError(`path "a" {\n  capabilities = ["read"]\n  max_wrapping_ttl = "-5m"\n}`)).toBe(
      'failed to parse policy: path "a": max_wrapping_ttl must be a positive duration',
    );
    expect(await parseError(`path "a" {\n  capabilities = ["read"]\n  min_wrapping_ttl = "10m"\n  max_wrapping_ttl = "5m"\n}`)).toBe(
      'failed to parse policy: path "a": max_wrapping_ttl cannot be less than min_wrapping_ttl',
    );
  });

  it("refuses malformed parameter constraints", async () => {
    const stanza = (field: string) => `path "a" {
  capabilities = ["update"]
  ${field}
}`;
    expect(await parseError(stanza(`allowed_parameters = ["x"]`))).toMatch(
      /path "a": "allowed_parameters" must map parameter names to lists of values/,
    );
    expect(await parseError(stanza(`denied_parameters = "x"`))).toMatch(
      /path "a": "denied_parameters" must map parameter names to lists of values/,
    );
    expect(await parseError(stanza(`allowed_parameters = { "x" = "y" }`))).toBe(
      'failed to parse policy: path "a": allowed_parameters: the values of "x" must be a list (an empty list for any value)',
    );
    expect(await parseError(stanza(`denied_parameters = { "x*" = [] }`))).toBe(
      `failed to parse policy: path "a": denied_parameters: parameter name "x*": '*' is only allowed as the whole name`,
    );
    expect(await parseError(stanza(`allowed_parameters = { "/data/x" = [] }`))).toBe(
      `failed to parse policy: path "a": allowed_parameters: parameter name "/data/x": names starting with '/' are not supported`,
    );
    expect(await parseError(stanza(`allowed_parameters = { "X" = [], "x" = [] }`))).toMatch(
      /path "a": allowed_parameters: "x" is given twice \(names are compared lower-cased\)/,
    );
    expect(await parseError(stanza(`required_parameters = "x"`))).toBe(
      'failed to parse policy: path "a": "required_parameters" must be a list of parameter names',
    );
    expect(await parseError(stanza(`required_parameters = [1]`))).toBe(
      'failed to parse policy: path "a": "required_parameters" must be a list of parameter names',
    );
    expect(await parseError(stanza(`required_parameters = ["*"]`))).toBe(
      `failed to parse policy: path "a": required_parameters: parameter name "*": '*' is not allowed here`,
    );
    const deep = `${"[".repeat(MAX_PARAMETER_VALUE_DEPTH + 1)}${"]".repeat(MAX_PARAMETER_VALUE_DEPTH + 1)}`;
    expect(
      await parseError(JSON.stringify({ path: { a: { capabilities: ["update"], allowed_parameters: { x: [JSON.parse(deep)] } } } })),
    ).toMatch(new RegExp(`a value of "x" is nested more than ${MAX_PARAMETER_VALUE_DEPTH} levels deep`));
    const deepest = `${"[".repeat(MAX_PARAMETER_VALUE_DEPTH)}${"]".repeat(MAX_PARAMETER_VALUE_DEPTH)}`;
    const accepted = await parsePolicy(
      "p",
      JSON.stringify({ path: { a: { capabilities: ["update"], allowed_parameters: { x: [JSON.parse(deepest)] } } } }),
    );
    expect(accepted.rules[0]?.allowedParameters?.get("x")).toHaveLength(1);
  });
});

describe("parsePolicy: limits", () => {
  it("refuses a text over MAX_POLICY_BYTES (UTF-8 bytes) before parsing it", async () => {
    expect(MAX_POLICY_BYTES).toBe(64 * 1024);
    // Invalid HCL and invalid JSON: the size error comes first, so nothing was parsed.
    const invalidHcl = `path "a" {${"#".repeat(MAX_POLICY_BYTES)}`;
    expect(await parseError(invalidHcl)).toBe(
      `policy is too large: ${MAX_POLICY_BYTES + 10} bytes, at most ${MAX_POLICY_BYTES} bytes are allowed`,
    );
    expect(await parseError(`{${" ".repeat(MAX_POLICY_BYTES)}`)).toMatch(/^policy is too large: /);
    // Counted in UTF-8 bytes, not characters: 32,769 "é" are 65,538 bytes.
    expect(await parseError(`# ${"é".repeat(MAX_POLICY_BYTES / 2)}`)).toBe(
      `policy is too large: ${MAX_POLICY_BYTES + 2} bytes, at most ${MAX_POLICY_BYTES} bytes are allowed`,
    );
    // Before the name is looked at too.
    expect(await parseError("x".repeat(MAX_POLICY_BYTES + 1), "Not Canonical")).toMatch(/^policy is too large: /);
  });

  it("accepts a text of exactly MAX_POLICY_BYTES", async () => {
    const stanza = `path "a" { capabilities = ["read"] }\n`;
    const text = `${stanza}${"#".repeat(MAX_POLICY_BYTES - stanza.length - 1)}\n`;
    expect(Buffer.byteLength(text)).toBe(MAX_POLICY_BYTES);
    expect((await parsePolicy("p", text)).rules).toHaveLength(1);
  });

  it("refuses more than MAX_POLICY_PATHS path stanzas, in HCL and in JSON", async () => {
    expect(MAX_POLICY_PATHS).toBe(2000);
    const hcl = (count: number) => Array.from({ length: count }, (_, i) => `path "${i}"{policy="deny"}`).join("\n");
    expect((await parsePolicy("p", hcl(MAX_POLICY_PATHS))).rules).toHaveLength(MAX_POLICY_PATHS);
    expect(await parseError(hcl(MAX_POLICY_PATHS + 1))).toBe(
      `failed to parse policy: too many path stanzas: at most ${MAX_POLICY_PATHS} are allowed`,
    );
    const json = (count: number) =>
      JSON.stringify({ path: Object.fromEntries(Array.from({ length: count }, (_, i) => [`${i}`, { policy: "deny" }])) });
    expect((await parsePolicy("p", json(MAX_POLICY_PATHS))).rules).toHaveLength(MAX_POLICY_PATHS);
    expect(await parseError(json(MAX_POLICY_PATHS + 1))).toBe(
      `failed to parse policy: too many path stanzas: at most ${MAX_POLICY_PATHS} are allowed`,
    );
    // Repeated stanzas of one path count each.
    const repeated = JSON.stringify({ path: { a: Array.from({ length: MAX_POLICY_PATHS + 1 }, () => ({ policy: "deny" })) } });
    expect(await parseError(repeated)).toMatch(/too many path stanzas/);
  });
});

describe("validatePolicyName", () => {
  it("accepts a canonical name as is", () => {
    for (const name of ["my-policy_1.x", "x".repeat(128), "...", "a", "0"]) expect(validatePolicyName(name)).toBe(name);
  });

  it("refuses characters outside [a-z0-9._-], upper case, spaces, dot names, and names over 128 characters", () => {
    for (const name of [
      "a/b",
      "a b",
      "é",
      "a*",
      "a+b",
      ".",
      "..",
      "x".repeat(129),
      "",
      "   ",
      " a",
      "a ",
      "My-Policy",
      "ROOT",
      "\u212Aelvin",
    ]) {
      expect(() => validatePolicyName(name), JSON.stringify(name)).toThrow(VaultError);
    }
  });
});

describe("canonicalPolicyName", () => {
  it("lower-cases ASCII letters, then validates", () => {
    expect(canonicalPolicyName("My-Policy_1.X")).toBe("my-policy_1.x");
    expect(canonicalPolicyName("ROOT")).toBe("root");
    expect(canonicalPolicyName("abc")).toBe("abc");
  });

  it("lower-cases nothing but A-Z: the Kelvin sign (U+212A) and other non-ASCII letters are refused", () => {
    // "\u212A".toLowerCase() is "k": a Unicode lower-casing would turn this name into "kelvin".
    expect("\u212A".toLowerCase()).toBe("k");
    expect(() => canonicalPolicyName("\u212Aelvin")).toThrow(VaultError);
    expect(() => canonicalPolicyName("\u0130nfra")).toThrow(VaultError);
    expect(() => canonicalPolicyName("É")).toThrow(VaultError);
  });

  it("does not trim, and refuses what validatePolicyName refuses", () => {
    for (const name of [" App", "App ", "", ".", "..", "A".repeat(129), "a/b"]) {
      expect(() => canonicalPolicyName(name), JSON.stringify(name)).toThrow(VaultError);
    }
    expect(canonicalPolicyName("A".repeat(128))).toBe("a".repeat(128));
  });
});
