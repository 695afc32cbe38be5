import type { StorageBackend } from "@egide/storage-core";
import type { TokenStore } from "../auth/token-store.js";
import { WRAPPED_RESPONSE_PREFIX, wrappedResponseKey } from "./wrapped-response-store.js";
import type { WrappedResponse } from "./wrapped-response-store.js";

/** How many wrapped responses one sweep looks at. */
export const SWEEP_PAGE = 100;

/**
 * Deletes wrapped responses nobody can unwrap any more: their wrapping token expired, or was
 * revoked (spent on another path, revoked by an administrator), together with the token. An
 * expired token is only refused by lookups; this is what frees its storage (Vault's
 * expiration manager destroys the cubbyhole at expiry).
 *
 * Each sweep looks at one page of {@link SWEEP_PAGE} entries after where the previous one
 * stopped, each entry in its own transaction (so it is checked and deleted atomically, whatever
 * another instance does meanwhile), and starts again from the beginning past the last page.
 */
export class WrappedResponseSweeper {
  #after = "";

  constructor(
    private readonly storage: StorageBackend,
    private readonly tokens: Pick<TokenStore, "lookupAccessor" | "revokeAccessor">,
  ) {}

  /** Sweeps one page; returns how many wrapped responses it deleted. */
  async sweep(now = Date.now()): Promise<number> {
    const page = await this.storage.listPage(WRAPPED_RESPONSE_PREFIX, this.#after, SWEEP_PAGE);
    this.#after = page.length < SWEEP_PAGE ? "" : (page[page.length - 1] as string);
    let deleted = 0;
    for (const accessor of page) {
      if (accessor.endsWith("/")) continue;
      const gone = await this.storage.transaction(async (tx) => {
        const raw = await tx.get(wrappedResponseKey(accessor));
        if (raw === null) return false;
        const stored = JSON.parse(raw.toString("utf8")) as WrappedResponse;
        const live = await this.tokens.lookupAccessor(accessor, tx, now);
        if (live !== null && stored.expiresAt > now) return false;
        await tx.delete(wrappedResponseKey(accessor));
        await this.tokens.revokeAccessor(tx, accessor);
        return true;
      });
      if (gone) deleted++;
    }
    return deleted;
  }
}
