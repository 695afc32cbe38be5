import type { AuditStore } from "./audit-store.js";
import { forwardMembers } from "./forward-members.js";
import { OPTIONAL_AUDIT_STORE_CAPABILITIES } from "./optional-capabilities.js";

/**
 * What a decorator changes in an audit store. Members left out are forwarded; an override of
 * `appendMany` is used only when the wrapped store has `appendMany`.
 */
export type AuditStoreOverrides = Partial<AuditStore>;

const REQUIRED = ["append", "query"] as const;

/**
 * An {@link AuditStore} over `inner` that runs `overrides` where given and forwards every other
 * member, with `appendMany` present exactly when `inner` has it. Overrides are called with
 * `this` bound to `overrides`.
 */
export function wrapAuditStore(inner: AuditStore, overrides: AuditStoreOverrides = {}): AuditStore {
  const wrapped = {} as AuditStore;
  forwardMembers(wrapped, inner, overrides, REQUIRED, false);
  forwardMembers(wrapped, inner, overrides, OPTIONAL_AUDIT_STORE_CAPABILITIES, true);
  return wrapped;
}
