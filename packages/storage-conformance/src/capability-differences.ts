import { OPTIONAL_AUDIT_STORE_CAPABILITIES, OPTIONAL_BACKEND_CAPABILITIES, OPTIONAL_TRANSACTION_CAPABILITIES } from "@egide/storage-core";
import type { StorageBackend, Transaction } from "@egide/storage-core";

type Presence = "function" | "object" | "absent";

function presence(value: unknown): Presence {
  if (typeof value === "function") return "function";
  return typeof value === "object" && value !== null ? "object" : "absent";
}

function member(holder: unknown, name: string): unknown {
  return (holder as Record<string, unknown>)[name];
}

/**
 * How `wrapped`, a decorator over `inner`, differs from it in the optional capabilities of the
 * storage contract (`OPTIONAL_BACKEND_CAPABILITIES`, `OPTIONAL_AUDIT_STORE_CAPABILITIES`,
 * `OPTIONAL_TRANSACTION_CAPABILITIES`): one line per capability that one offers and the other
 * does not, on the backend, its audit store, and its read-write and read-only transactions.
 * An empty list means the decorator keeps every capability and invents none. Opens one
 * transaction of each kind on both (calling nothing inside them).
 */
export async function capabilityDifferences(inner: StorageBackend, wrapped: StorageBackend): Promise<string[]> {
  const differences: string[] = [];
  const compare = (where: string, names: readonly string[], innerHolder: unknown, wrappedHolder: unknown) => {
    for (const name of names) {
      const expected = presence(member(innerHolder, name));
      const actual = presence(member(wrappedHolder, name));
      if (expected !== actual) differences.push(`${where}.${name}: ${expected} in the wrapped backend, ${actual} in the decorator`);
    }
  };

  compare("backend", OPTIONAL_BACKEND_CAPABILITIES, inner, wrapped);
  const innerAudit = member(inner, "audit");
  const wrappedAudit = member(wrapped, "audit");
  if (presence(innerAudit) === "object" && presence(wrappedAudit) === "object") {
    compare("audit", ["append", "query", ...OPTIONAL_AUDIT_STORE_CAPABILITIES], innerAudit, wrappedAudit);
  }

  for (const readOnly of [false, true]) {
    const where = readOnly ? "read-only transaction" : "transaction";
    const [innerTx, wrappedTx] = [await capabilitiesOf(inner, readOnly), await capabilitiesOf(wrapped, readOnly)];
    if (innerTx.refused !== wrappedTx.refused) {
      differences.push(
        `${where}: ${innerTx.refused ? "refused" : "opened"} by the wrapped backend, ${wrappedTx.refused ? "refused" : "opened"} by the decorator`,
      );
      continue;
    }
    compare(where, OPTIONAL_TRANSACTION_CAPABILITIES, innerTx.members, wrappedTx.members);
  }
  return differences;
}

async function capabilitiesOf(backend: StorageBackend, readOnly: boolean): Promise<{ refused: boolean; members: Record<string, unknown> }> {
  try {
    const members = await backend.transaction(
      async (tx: Transaction) => {
        const seen: Record<string, unknown> = {};
        for (const name of OPTIONAL_TRANSACTION_CAPABILITIES) seen[name] = member(tx, name);
        return seen;
      },
      { readOnly },
    );
    return { refused: false, members };
  } catch {
    // A backend that refuses transactions (a read-only view) must be wrapped into one that does too.
    return { refused: true, members: {} };
  }
}
