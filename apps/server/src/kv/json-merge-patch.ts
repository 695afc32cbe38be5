import { isJsonObject } from "./kv-input.js";

/**
 * Applies a JSON merge patch (RFC 7386) to `target` and returns the result; neither input is
 * modified. An object patch merges member by member, a `null` member removes that member, and
 * any other patch value (array, string, number…) replaces the target outright.
 *
 * Results are built with `Object.fromEntries`, which defines properties rather than assigning
 * them, so a member named `__proto__` stays an ordinary member and never touches a prototype.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return patch;
  const base = isJsonObject(target) ? target : {};
  const result = new Map<string, unknown>(Object.entries(base));
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) {
      result.delete(name);
    } else {
      result.set(name, mergePatch(result.get(name), value));
    }
  }
  return Object.fromEntries(result);
}
