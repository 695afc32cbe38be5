import type { StorageBackend, Transaction } from "@egide/storage-core";
import type { TokenRole } from "./token-role.js";

const ROLE_PREFIX = "sys/token/roles/";

/**
 * Token roles (`auth/token/roles/:role_name`), stored through the encrypting barrier under
 * `sys/token/roles/<name>`. Reads go to the storage each time, so every instance sharing the
 * database sees a change at once.
 */
export class TokenRoleStore {
  constructor(readonly storage: StorageBackend) {}

  /** The role named `name`, or `null`. */
  async get(name: string, reader: Pick<Transaction, "get"> = this.storage): Promise<TokenRole | null> {
    const raw = await reader.get(ROLE_PREFIX + name);
    if (raw === null) return null;
    const stored = JSON.parse(raw.toString("utf8")) as TokenRole;
    // An upgrade as Vault's: a role written with only the deprecated names applies them.
    if (stored.tokenPeriodS === 0 && stored.periodS > 0) stored.tokenPeriodS = stored.periodS;
    if (stored.tokenExplicitMaxTtlS === 0 && stored.explicitMaxTtlS > 0) stored.tokenExplicitMaxTtlS = stored.explicitMaxTtlS;
    return stored;
  }

  /** Writes `role` inside `tx`. */
  async put(tx: Transaction, role: TokenRole): Promise<void> {
    await tx.put(ROLE_PREFIX + role.name, Buffer.from(JSON.stringify(role)));
  }

  /** Deletes the role named `name` inside `tx` (nothing when there is none). */
  async delete(tx: Transaction, name: string): Promise<void> {
    await tx.delete(ROLE_PREFIX + name);
  }

  /** The role names, sorted. */
  async list(reader: Pick<Transaction, "list"> = this.storage): Promise<string[]> {
    return (await reader.list(ROLE_PREFIX)).filter((name) => !name.endsWith("/")).sort();
  }
}
