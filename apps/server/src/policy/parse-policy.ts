import { badRequest } from "../http/vault-error.js";
import type { Capability } from "../server-context.js";
import { durationSecondMs } from "../wrapping/wrap-ttl.js";
import { goToLower } from "./parameter-constraints.js";
import type { ParameterValueMap } from "./parameter-constraints.js";
import { CAPABILITIES, MAX_POLICY_BYTES, MAX_POLICY_PATHS, validatePolicyName } from "./policy.js";
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
 * Every field a stanza may hold is enforced: `capabilities` (and the older `policy`),
 * `allowed_parameters`, `denied_parameters` and `required_parameters` (by the ACL, see
 * `parameter-constraints.ts`); `min_wrapping_ttl` and `max_wrapping_ttl` (durations, as Vault's
 * `ParseDurationSecond` reads them; by the request pipeline, from the ACL's result); `comment`
 * restricts nothing. Refused rather than ignored (ignoring them would grant what Vault would
 * gate): the Enterprise-only `mfa_methods` and `control_group`.
 *
 * Parameter constraints as Vault parses them: names lower-cased, `*` standing for every
 * parameter, each name mapped to a list of values (empty: any value). Stricter than Vault: a name
 * with a `*` other than `*` itself, or starting with `/` (JSON-pointer names in recent Vault),
 * two names equal once lower-cased, a value that is not a list, and values nested more than
 * {@link MAX_PARAMETER_VALUE_DEPTH} levels deep are refused.
 *
 * Limits, so that a policy cannot make the parser or the ACL slow: the text is at most
 * {@link MAX_POLICY_BYTES} bytes of UTF-8 (checked before anything is parsed), and holds at most
 * {@link MAX_POLICY_PATHS} `path` stanzas.
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

// Vault Enterprise fields: refused rather than silently ignored.
const ENTERPRISE_FIELDS = new Set(["mfa_methods", "control_group"]);
const KNOWN_CAPABILITIES: ReadonlySet<string> = new Set(CAPABILITIES);
// The fields a stanza may hold (each enforced, but the comment).
const STANZA_FIELDS = new Set([
  "capabilities",
  "policy",
  "comment",
  "allowed_parameters",
  "denied_parameters",
  "required_parameters",
  "min_wrapping_ttl",
  "max_wrapping_ttl",
]);

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
  hclParser ??= (import(HCL2JSON) as Promise<{ parse: HclParse }>)
    .then((module) => module.parse)
    .catch((error: unknown) => {
      hclParser = undefined;
      throw error;
    });
  return hclParser;
}

/** How deeply a value of `allowed_parameters` or `denied_parameters` may nest arrays and objects. */
export const MAX_PARAMETER_VALUE_DEPTH = 32;

/**
 * Parses and validates the policy `text` named `name` (a canonical name: see
 * {@link validatePolicyName}). Throws a 400 `VaultError` naming the faulty path, field or
 * capability when the text is too large (checked first, before any parsing), does not parse or
 * is not a valid policy, or when the name is not canonical.
 */
export async function parsePolicy(name: string, text: string): Promise<Policy> {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_POLICY_BYTES) throw badRequest(`policy is too large: ${bytes} bytes, at most ${MAX_POLICY_BYTES} bytes are allowed`);
  validatePolicyName(name);
  const format: PolicyFormat = text.trimStart().startsWith("{") ? "json" : "hcl";
  const document = format === "json" ? parseJson(text) : await parseHcl(text);
  const rules = format === "json" ? jsonRules(document) : hclRules(document);
  return { name, rules, raw: text, format };
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
    for (const body of bodiesOf(path, value)) addRule(rules, pathRule(path, body));
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
      for (const body of bodiesOf(path, value)) addRule(rules, pathRule(path, body));
    }
  }
  return rules;
}

function addRule(rules: PathRule[], rule: PathRule): void {
  if (rules.length >= MAX_POLICY_PATHS) fail(`too many path stanzas: at most ${MAX_POLICY_PATHS} are allowed`);
  rules.push(rule);
}

function bodiesOf(path: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) return [value];
  if (value.length === 0) fail(`path ${JSON.stringify(path)}: no rules given`);
  return value;
}

function checkTopLevel(document: Record<string, unknown>): void {
  for (const key of Object.keys(document)) {
    if (key !== "path" && key !== "name")
      fail(`invalid key ${JSON.stringify(key)}: a policy holds only "path" stanzas (and an optional "name")`);
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

  for (const key of Object.keys(body)) {
    if (STANZA_FIELDS.has(key)) continue;
    if (ENTERPRISE_FIELDS.has(key)) fail(`path ${label}: ${JSON.stringify(key)} is a Vault Enterprise feature that Egide does not support`);
    fail(`path ${label}: invalid key ${JSON.stringify(key)}`);
  }

  const granted = new Set<Capability>();
  const capabilities = body.capabilities;
  if (capabilities !== undefined) {
    if (!Array.isArray(capabilities)) fail(`path ${label}: "capabilities" must be a list of strings, such as ["read", "list"]`);
    for (const capability of capabilities) {
      if (typeof capability !== "string" || !KNOWN_CAPABILITIES.has(capability)) {
        fail(`path ${label}: invalid capability ${describeCapability(capability)}`);
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

  // Checked for every stanza; kept unless the stanza denies (as in Vault, a deny stanza carries
  // no parameter constraints: it denies everything anyway).
  const allowed = parameterMap(label, "allowed_parameters", body.allowed_parameters);
  const denied = parameterMap(label, "denied_parameters", body.denied_parameters);
  const required = requiredParameters(label, body.required_parameters);
  const minWrapping = wrappingTtl(label, "min_wrapping_ttl", body.min_wrapping_ttl);
  const maxWrapping = wrappingTtl(label, "max_wrapping_ttl", body.max_wrapping_ttl);
  if (minWrapping > 0 && maxWrapping > 0 && maxWrapping < minWrapping) {
    fail(`path ${label}: max_wrapping_ttl cannot be less than min_wrapping_ttl`);
  }
  if (!granted.has("deny")) {
    if (allowed !== undefined) rule.allowedParameters = allowed;
    if (denied !== undefined) rule.deniedParameters = denied;
    if (required !== undefined) rule.requiredParameters = required;
    if (minWrapping > 0) rule.minWrappingTtlMs = minWrapping;
    if (maxWrapping > 0) rule.maxWrappingTtlMs = maxWrapping;
  }
  return rule;
}

// `min_wrapping_ttl` / `max_wrapping_ttl`: a number of seconds or a duration string, in ms
// (0 when absent). Stricter than Vault: a negative value is refused, not ignored.
function wrappingTtl(label: string, field: string, value: unknown): number {
  if (value === undefined) return 0;
  let ms: number;
  try {
    ms = durationSecondMs(value);
  } catch (error) {
    fail(`path ${label}: error parsing ${field}: ${(error as Error).message}`);
  }
  if (ms < 0 || !Number.isSafeInteger(ms)) fail(`path ${label}: ${field} must be a positive duration`);
  return ms;
}

// A parameter name as written: a literal name, or "*" for every parameter.
function checkParameterName(label: string, field: string, name: string, wildcardAllowed: boolean): void {
  if (name.includes("*") && !(wildcardAllowed && name === "*")) {
    fail(
      `path ${label}: ${field}: parameter name ${JSON.stringify(name)}: ${wildcardAllowed ? "'*' is only allowed as the whole name" : "'*' is not allowed here"}`,
    );
  }
  if (name.startsWith("/"))
    fail(`path ${label}: ${field}: parameter name ${JSON.stringify(name)}: names starting with '/' are not supported`);
}

// `allowed_parameters` / `denied_parameters`: {name: [values]} (HCL's block form, one block,
// gives [{name: [values]}]). Undefined when absent or empty.
function parameterMap(label: string, field: string, value: unknown): ParameterValueMap | undefined {
  if (value === undefined) return undefined;
  let map = value;
  if (Array.isArray(map) && map.length === 1) map = map[0];
  if (!isObject(map))
    fail(`path ${label}: ${JSON.stringify(field)} must map parameter names to lists of values, such as { "name" = ["a", "b"] }`);
  const result: ParameterValueMap = new Map();
  for (const [name, values] of Object.entries(map)) {
    checkParameterName(label, field, name, true);
    if (!Array.isArray(values))
      fail(`path ${label}: ${field}: the values of ${JSON.stringify(name)} must be a list (an empty list for any value)`);
    for (const element of values) {
      if (depth(element, MAX_PARAMETER_VALUE_DEPTH + 1) > MAX_PARAMETER_VALUE_DEPTH) {
        fail(`path ${label}: ${field}: a value of ${JSON.stringify(name)} is nested more than ${MAX_PARAMETER_VALUE_DEPTH} levels deep`);
      }
    }
    const key = goToLower(name);
    if (result.has(key)) fail(`path ${label}: ${field}: ${JSON.stringify(name)} is given twice (names are compared lower-cased)`);
    result.set(key, [...values]);
  }
  return result.size > 0 ? result : undefined;
}

// `required_parameters`: a list of names. Undefined when absent or empty.
function requiredParameters(label: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail(`path ${label}: "required_parameters" must be a list of parameter names`);
  const names: string[] = [];
  for (const name of value) {
    if (typeof name !== "string") fail(`path ${label}: "required_parameters" must be a list of parameter names`);
    checkParameterName(label, "required_parameters", name, false);
    names.push(name);
  }
  return names.length > 0 ? names : undefined;
}

// How deeply `value` nests arrays and objects (0 for a scalar), counted up to `limit`.
function depth(value: unknown, limit: number): number {
  if (typeof value !== "object" || value === null || limit <= 0) return 0;
  let deepest = 0;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    deepest = Math.max(deepest, depth(child, limit - 1));
    if (deepest >= limit) break;
  }
  return deepest + 1;
}

// A refused capability as the error names it: never the whole value (a deeply nested one
// would make JSON.stringify overflow the stack).
function describeCapability(capability: unknown): string {
  if (typeof capability === "string") return JSON.stringify(capability.slice(0, 100));
  if (typeof capability === "object" && capability !== null) return `of type ${Array.isArray(capability) ? "array" : "object"}`;
  return String(capability);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
