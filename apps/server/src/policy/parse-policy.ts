import { badRequest } from "../http/vault-error.js";
import type { Capability } from "../server-context.js";
import { CAPABILITIES, normalizePolicyName } from "./policy.js";
import type { PathRule, Policy, PolicyFormat } from "./policy.js";

/**
 * Parsing of Vault ACL policies, in HCL or in JSON.
 *
 * HCL goes through `@cdktf/hcl2json` (HashiCorp's WebAssembly build of the HCL 2 parser,
 * turning HCL into its JSON form); JSON is parsed directly, as Vault does when the text starts
 * with `{`. The result is then validated the way Vault's `ParseACLPolicy` does, stricter in a
 * few places (an empty capability list, an unknown capability or a `*` before the end of a path
 * are refused).
 *
 * Accepted but NOT enforced: `allowed_parameters`, `denied_parameters`, `required_parameters`,
 * `min_wrapping_ttl` and `max_wrapping_ttl`. They are kept in the raw text (so a read returns
 * them) and listed in {@link PathRule.unenforced}, but Egide grants or refuses by capability
 * only. Refused: the Enterprise-only `mfa_methods` and `control_group` (ignoring them would
 * grant what Vault Enterprise would gate).
 *
 * HCL 2 vs Vault's HCL 1: the documented policy syntax is the same; HCL 1 oddities (several
 * attributes on one line inside a block, quoted attribute names) are refused by HCL 2. The
 * parser returns stanzas sorted by path.
 *
 * The WebAssembly parser is loaded on the first HCL parse (about 150 ms, some 70 MB of memory);
 * it then parses a small policy in well under a millisecond, but synchronously, on the event
 * loop (about 90 ms for a 1000-stanza policy). Loading it defines the globals `Go`, `require`,
 * `fs` and `__parse_terraform_config_wasm__` (Go's `wasm_exec` glue).
 */

// Stanza fields Egide accepts without enforcing them (see the module comment).
const UNENFORCED_FIELDS = new Set(["allowed_parameters", "denied_parameters", "required_parameters", "min_wrapping_ttl", "max_wrapping_ttl"]);
// Vault Enterprise fields: refused rather than silently ignored.
const ENTERPRISE_FIELDS = new Set(["mfa_methods", "control_group"]);
const KNOWN_CAPABILITIES: ReadonlySet<string> = new Set(CAPABILITIES);

// Vault's pre-0.5 `policy = "..."` shorthand and the capabilities each stands for.
const OLD_POLICIES: ReadonlyMap<string, readonly Capability[]> = new Map([
  ["deny", ["deny"]],
  ["read", ["read", "list"]],
  ["write", ["create", "read", "update", "delete", "list"]],
  ["sudo", ["create", "read", "update", "delete", "list", "sudo"]],
]);

type HclParse = (filename: string, contents: string) => Promise<Record<string, unknown>>;

// The module is CommonJS; it is loaded on first use (importing it decompresses and compiles the
// 1.7 MB WebAssembly parser). The specifier is not a literal so that TypeScript does not load
// the package's types, which pull in the DOM library for the whole program.
const HCL2JSON: string = "@cdktf/hcl2json";
let hclParser: Promise<HclParse> | undefined;

function loadHclParser(): Promise<HclParse> {
  hclParser ??= (import(HCL2JSON) as Promise<{ parse: HclParse }>).then((module) => module.parse).catch((error: unknown) => {
    hclParser = undefined;
    throw error;
  });
  return hclParser;
}

/**
 * Parses and validates the policy `text` named `name` (normalised with
 * {@link normalizePolicyName}). Throws a 400 `VaultError` naming the faulty path or capability
 * when the text does not parse or is not a valid policy.
 */
export async function parsePolicy(name: string, text: string): Promise<Policy> {
  const normalized = normalizePolicyName(name);
  const format: PolicyFormat = text.trimStart().startsWith("{") ? "json" : "hcl";
  const document = format === "json" ? parseJson(text) : await parseHcl(text);
  const rules = format === "json" ? jsonRules(document) : hclRules(document);
  return { name: normalized, rules, raw: text, format };
}

function fail(message: string): never {
  throw badRequest(`failed to parse policy: ${message}`);
}

function parseJson(text: string): Record<string, unknown> {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    fail(`invalid JSON: ${(error as Error).message}`);
  }
  if (!isObject(document)) fail("does not contain a root object");
  return document;
}

async function parseHcl(text: string): Promise<Record<string, unknown>> {
  const parse = await loadHclParser();
  let document: unknown;
  try {
    document = await parse("policy.hcl", text);
  } catch (error) {
    // "parse config: [policy.hcl:1,10-11: Unclosed configuration block; ...]"
    const message = (error instanceof Error ? error.message : String(error)).replace(/^parse config: \[(.*)\]$/s, "$1");
    fail(message);
  }
  if (!isObject(document)) fail("does not contain a root object");
  return document;
}

// HCL's JSON form: `path "x" { ... }` blocks give {"path": {"x": [{...}, ...]}}; the attribute
// form `path = { "x" = { ... } }` gives {"path": {"x": {...}}}.
function hclRules(document: Record<string, unknown>): PathRule[] {
  checkTopLevel(document);
  const paths = document.path;
  if (paths === undefined) return [];
  if (!isObject(paths)) fail(`"path" must be a block with the path as its label: path "secret/*" { ... }`);
  const rules: PathRule[] = [];
  for (const [path, value] of Object.entries(paths)) {
    for (const body of bodiesOf(path, value)) rules.push(pathRule(path, body));
  }
  return rules;
}

// Vault's JSON policies: {"path": {"x": {...}}}, and HCL 1's list forms
// {"path": [{"x": {...}}, ...]} and {"path": {"x": [{...}, ...]}}.
function jsonRules(document: Record<string, unknown>): PathRule[] {
  checkTopLevel(document);
  const paths = document.path;
  if (paths === undefined) return [];
  const maps = Array.isArray(paths) ? paths : [paths];
  const rules: PathRule[] = [];
  for (const map of maps) {
    if (!isObject(map)) fail(`"path" must be an object mapping each path to its rules`);
    for (const [path, value] of Object.entries(map)) {
      for (const body of bodiesOf(path, value)) rules.push(pathRule(path, body));
    }
  }
  return rules;
}

function bodiesOf(path: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) return [value];
  if (value.length === 0) fail(`path ${JSON.stringify(path)}: no rules given`);
  return value;
}

function checkTopLevel(document: Record<string, unknown>): void {
  for (const key of Object.keys(document)) {
    if (key !== "path" && key !== "name") fail(`invalid key ${JSON.stringify(key)}: a policy holds only "path" stanzas (and an optional "name")`);
  }
  // The name, if given, is ignored (the URL names the policy), but must be a string.
  if (document.name !== undefined && typeof document.name !== "string") fail(`"name" must be a string`);
}

function pathRule(written: string, body: unknown): PathRule {
  const label = JSON.stringify(written);
  if (!isObject(body)) fail(`path ${label}: the rules must be an object such as { capabilities = ["read"] }`);

  // Vault strips one leading "/": policy paths start after /v1/.
  const path = written.startsWith("/") ? written.slice(1) : written;
  if (path === "") fail(`path ${label}: the path must not be empty`);
  const star = path.indexOf("*");
  if (star !== -1 && star !== path.length - 1) fail(`path ${label}: the glob '*' is only allowed at the end of a path`);
  if (path.includes("+*")) fail(`path ${label}: invalid use of wildcards ('+*' is forbidden)`);

  const unenforced: string[] = [];
  for (const key of Object.keys(body)) {
    if (key === "capabilities" || key === "policy" || key === "comment") continue;
    if (UNENFORCED_FIELDS.has(key)) {
      unenforced.push(key);
      continue;
    }
    if (ENTERPRISE_FIELDS.has(key)) fail(`path ${label}: ${JSON.stringify(key)} is a Vault Enterprise feature that Egide does not support`);
    fail(`path ${label}: invalid key ${JSON.stringify(key)}`);
  }

  const granted = new Set<Capability>();
  const capabilities = body.capabilities;
  if (capabilities !== undefined) {
    if (!Array.isArray(capabilities)) fail(`path ${label}: "capabilities" must be a list of strings, such as ["read", "list"]`);
    for (const capability of capabilities) {
      if (typeof capability !== "string" || !KNOWN_CAPABILITIES.has(capability)) {
        fail(`path ${label}: invalid capability ${typeof capability === "string" ? JSON.stringify(capability) : String(JSON.stringify(capability))}`);
      }
      granted.add(capability as Capability);
    }
  }
  const policy = body.policy;
  if (policy !== undefined) {
    const old = typeof policy === "string" ? OLD_POLICIES.get(policy) : undefined;
    if (old === undefined) fail(`path ${label}: invalid policy ${JSON.stringify(policy)}`);
    // As in Vault, `policy = "deny"` replaces the capabilities; the others add to them.
    if (policy === "deny") granted.clear();
    for (const capability of old) granted.add(capability);
  }
  if (granted.size === 0) fail(`path ${label}: no capabilities given (add capabilities = [...], or ["deny"] to deny)`);

  const segmentWildcards = path === "+" || path.startsWith("+/") || path.includes("/+");
  const prefix = path.endsWith("*");
  const rule: PathRule = {
    path,
    capabilities: granted.has("deny") ? ["deny"] : CAPABILITIES.filter((capability) => granted.has(capability)),
    prefix,
    segmentWildcards,
  };
  if (segmentWildcards) rule.segments = (prefix ? path.slice(0, -1) : path).split("/");
  if (unenforced.length > 0) rule.unenforced = unenforced.sort();
  return rule;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
