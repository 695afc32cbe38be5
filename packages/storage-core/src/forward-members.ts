/**
 * Fills `target` with the members `names` of a wrapper around `inner`: the override when
 * `overrides` has one (called with `this` bound to `overrides`), else a call forwarded to
 * `inner`. With `optional`, a member `inner` lacks is left out, override or not, so a wrapper
 * never offers a capability its inner object does not have. Forwarded calls look the member up
 * on `inner` at each call.
 *
 * Internal to {@link wrapStorage}, {@link wrapTransaction} and {@link wrapAuditStore}.
 */
export function forwardMembers(target: object, inner: object, overrides: object, names: readonly string[], optional: boolean): void {
  const from = inner as Record<string, unknown>;
  const own = overrides as Record<string, unknown>;
  const into = target as Record<string, unknown>;
  for (const name of names) {
    if (optional && typeof from[name] !== "function") continue;
    const override = own[name];
    into[name] =
      typeof override === "function"
        ? override.bind(overrides)
        : (...args: unknown[]) => (from[name] as (...args: unknown[]) => unknown).apply(inner, args);
  }
}
