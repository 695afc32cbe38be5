import { globbedStringsMatch } from "./glob-match.js";

/**
 * The parameter constraints of a policy stanza (`allowed_parameters`, `denied_parameters`,
 * `required_parameters`) and their enforcement, as Vault's `vault/acl.go` (`AllowOperation`,
 * `valueInAllowedParameterList`, `valueInDeniedParameterList`, `valueInParameterList`) and
 * `NewACL` (merging) do.
 */

/** Parameter name (lower-cased, or `*`) → the values allowed or denied; an empty list means any value. */
export type ParameterValueMap = Map<string, unknown[]>;

/** The constraints of one rule (one stanza, or the merge of every stanza of one path pattern). */
export interface ParameterConstraints {
  /** Vault's AllowedParameters; absent when the stanza has none (or an empty map). */
  allowedParameters?: ParameterValueMap;
  /** Vault's DeniedParameters; absent when the stanza has none (or an empty map). */
  deniedParameters?: ParameterValueMap;
  /** Vault's RequiredParameters, as written (they are lower-cased when checked); absent when none. */
  requiredParameters?: string[];
}

/**
 * Go's `strings.ToLower`: each code point mapped by its simple lower-case mapping (JavaScript's
 * `toLowerCase` also applies the special mapping of U+0130 to two code points and the
 * final-sigma rule; Go does neither).
 */
export function goToLower(text: string): string {
  let ascii = true;
  for (let i = 0; i < text.length && ascii; i++) ascii = text.charCodeAt(i) < 0x80;
  if (ascii) return text.toLowerCase();
  let lowered = "";
  for (const character of text) {
    const mapped = character.toLowerCase();
    // Only U+0130 maps to more than one code point; its simple mapping is the first one ("i").
    lowered += String.fromCodePoint(mapped.codePointAt(0) as number);
  }
  return lowered;
}

// Go's unicode.IsSpace: what strings.TrimSpace removes.
function isGoSpace(code: number): boolean {
  return (
    (code >= 0x09 && code <= 0x0d) ||
    code === 0x20 ||
    code === 0x85 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

/** Go's `strings.TrimSpace`. */
function goTrimSpace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isGoSpace(text.charCodeAt(start))) start++;
  while (end > start && isGoSpace(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

/**
 * Vault's `parseutil.ParseCommaStringSlice` for a string: `[]` for the empty string, otherwise
 * the string split on `,`, each part trimmed of white space.
 */
function commaStringSlice(text: string): string[] {
  if (text === "") return [];
  return text.split(",").map(goTrimSpace);
}

/** Go's `reflect.DeepEqual` on JSON values (null, booleans, numbers, strings, arrays, objects). */
export function jsonDeepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (typeof a !== typeof b) return false;
  if (typeof a !== "object") return false;
  const aIsArray = Array.isArray(a);
  if (aIsArray !== Array.isArray(b)) return false;
  if (aIsArray) {
    const left = a as unknown[];
    const right = b as unknown[];
    if (left.length !== right.length) return false;
    for (let i = 0; i < left.length; i++) if (!jsonDeepEqual(left[i], right[i])) return false;
    return true;
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(right, key)) return false;
    if (!jsonDeepEqual(left[key], right[key])) return false;
  }
  return true;
}

const isNil = (value: unknown): boolean => value === null || value === undefined;

/**
 * Vault's `valueInParameterList`: whether `value` matches an element of `list`. A string element
 * matches a string value by {@link globbedStringsMatch} (and nothing else); `null` matches only
 * `null`; any other element matches a deeply equal value.
 */
export function valueInParameterList(value: unknown, list: readonly unknown[]): boolean {
  for (const element of list) {
    if (isNil(element) || isNil(value)) {
      if (isNil(element) && isNil(value)) return true;
    } else if (typeof element === "string") {
      if (typeof value === "string" && globbedStringsMatch(element, value)) return true;
    } else if (jsonDeepEqual(element, value)) {
      return true;
    }
  }
  return false;
}

/**
 * Vault's `valueInAllowedParameterList` (without `VAULT_LEGACY_EXACT_MATCHING_ON_LIST`): an empty
 * list allows any value; otherwise the value must match an element, or, when it is an array,
 * each of its elements must, or, when it is a string, each of its comma-separated parts must.
 *
 * One deliberate difference: Vault lets an empty array, and the empty string (no comma-separated
 * part), through any allowed list, since "every element" of nothing holds. Here they must match
 * an element as a whole (as in Vault 1.20 and before): otherwise `required_parameters` plus
 * `allowed_parameters` (say `policies` required and limited to `["app"]`) would be bypassed by
 * sending `[]` or `""`, which backends read as "use the default".
 */
export function valueInAllowedParameterList(value: unknown, list: readonly unknown[]): boolean {
  if (list.length === 0) return true;
  if (valueInParameterList(value, list)) return true;
  if (Array.isArray(value)) return value.length > 0 && value.every((element) => valueInParameterList(element, list));
  if (typeof value === "string") {
    const parts = commaStringSlice(value);
    return parts.length > 0 && parts.every((part) => valueInParameterList(part, list));
  }
  return false;
}

/**
 * Vault's `valueInDeniedParameterList`: an empty list denies any value; otherwise the value is
 * denied when it matches an element, or, when it is an array, when any of its elements does, or,
 * when it is a string, when any of its comma-separated parts does.
 */
export function valueInDeniedParameterList(value: unknown, list: readonly unknown[]): boolean {
  if (list.length === 0) return true;
  if (valueInParameterList(value, list)) return true;
  if (Array.isArray(value)) return value.some((element) => valueInParameterList(element, list));
  if (typeof value === "string") return commaStringSlice(value).some((part) => valueInParameterList(part, list));
  return false;
}

// Vault's normalizePolicyParameterValue: policy names are compared lower-cased, so that
// "ADMIN" cannot slip past a constraint on "admin".
function normalizeParameterValue(parameter: string, value: unknown): unknown {
  const name = goToLower(parameter);
  if (name !== "policies" && name !== "token_policies") return value;
  if (typeof value === "string") return goToLower(value);
  if (Array.isArray(value)) return value.map((element) => (typeof element === "string" ? goToLower(element) : element));
  return value;
}

/**
 * The parameter checks of Vault's `AllowOperation` (for read, create, update and patch), in its
 * order: every required parameter must be present (looked up lower-cased, the request's keys
 * as sent); no data at all is then allowed; a denied `*` denies any data; a parameter denied
 * with a matching value denies; no allowed parameters (or only `*`) allows; otherwise every
 * parameter must be allowed (by name, or by `*`) with a matching value. Request parameter names
 * are lower-cased to look up the denied and allowed ones.
 */
export function parametersAllowed(constraints: ParameterConstraints, data: Readonly<Record<string, unknown>> | undefined): boolean {
  for (const parameter of constraints.requiredParameters ?? []) {
    if (data === undefined || !Object.hasOwn(data, goToLower(parameter))) return false;
  }
  const keys = data === undefined ? [] : Object.keys(data);
  if (data === undefined || keys.length === 0) return true;

  const denied = constraints.deniedParameters;
  if (denied !== undefined && denied.size > 0) {
    if (denied.has("*")) return false;
    for (const key of keys) {
      const list = denied.get(goToLower(key));
      if (list !== undefined && valueInDeniedParameterList(normalizeParameterValue(key, data[key]), list)) return false;
    }
  }

  const allowed = constraints.allowedParameters;
  if (allowed === undefined || allowed.size === 0) return true;
  const allowedAll = allowed.has("*");
  if (allowed.size === 1 && allowedAll) return true;
  for (const key of keys) {
    const list = allowed.get(goToLower(key));
    if (list === undefined) {
      if (!allowedAll) return false;
      continue;
    }
    if (!valueInAllowedParameterList(normalizeParameterValue(key, data[key]), list)) return false;
  }
  return true;
}

/** A copy of `map` (the value lists copied too). */
export function copyValueMap(map: ParameterValueMap | undefined): ParameterValueMap | undefined {
  if (map === undefined || map.size === 0) return undefined;
  return new Map([...map].map(([key, values]) => [key, [...values]]));
}

/**
 * Vault's merge of allowed (or denied) parameters of two stanzas of one path (`NewACL`): the
 * added map is taken when there was none; otherwise, per parameter, an empty list on either
 * side gives an empty list (any value), else the added values come first, then the existing
 * ones. Returns the merged map (`existing`, modified, when there was one).
 */
export function mergeValueMaps(
  existing: ParameterValueMap | undefined,
  added: ParameterValueMap | undefined,
): ParameterValueMap | undefined {
  if (added === undefined || added.size === 0) return existing;
  if (existing === undefined) return copyValueMap(added);
  for (const [key, values] of added) {
    const current = existing.get(key);
    if (values.length === 0 || (current !== undefined && current.length === 0)) existing.set(key, []);
    else existing.set(key, [...values, ...(current ?? [])]);
  }
  return existing;
}

/** Vault's merge of required parameters: the union, in order, without repeating a name. */
export function mergeRequired(existing: string[] | undefined, added: readonly string[] | undefined): string[] | undefined {
  if (added === undefined || added.length === 0) return existing;
  if (existing === undefined || existing.length === 0) return [...added];
  for (const name of added) if (!existing.includes(name)) existing.push(name);
  return existing;
}
