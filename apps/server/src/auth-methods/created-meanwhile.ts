import { VaultError } from "../http/vault-error.js";
import type { AuthMethodCall } from "./auth-method-call.js";

/**
 * A write authorised as a `create` (Vault's existence check found nothing there) must still
 * find nothing inside its transaction: otherwise a caller allowed only to create would replace
 * a role or user made meanwhile by someone else. 409, as the KV engines answer the same race.
 */
export function assertNotCreatedMeanwhile(call: AuthMethodCall, previous: unknown): void {
  if (call.request.egide.operation === "create" && previous !== null && previous !== undefined) {
    throw new VaultError(409, "the entry was created by another request while this one was authorised as a create; retry");
  }
}
