import { VaultError } from "../../src/http/vault-error.js";

/** The VaultError `promise` rejects with; any other outcome fails the test. */
export async function vaultError(promise: Promise<unknown>): Promise<VaultError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VaultError) return error;
    throw error;
  }
  throw new Error("expected a VaultError");
}
