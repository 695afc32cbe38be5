import type { StorageBackend, Transaction } from "@egide/storage-core";

/**
 * A view of `tx` with only the members every transaction must have: none of the optional
 * capabilities (`putMany`, `getMany`, `appendAudit`), whatever `tx` offers. For building test backends
 * that lack them, and hand-forwarding decorators to check against.
 */
export function requiredTransaction(tx: Transaction): Transaction {
  return {
    get: (key) => tx.get(key),
    put: (key, value) => tx.put(key, value),
    delete: (key) => tx.delete(key),
    exists: (key) => tx.exists(key),
    list: (prefix) => tx.list(prefix),
    listPage: (prefix, after, limit) => tx.listPage(prefix, after, limit),
  };
}

/**
 * A view of `backend` with only the members every backend must have, and transactions with
 * only theirs ({@link requiredTransaction}): no `audit`, `poolStats`, `getMany`,
 * `subscribeChanges`, `putMany` or `appendAudit`. It is what a decorator that forwards by hand, member by member, ends up as.
 */
export function requiredBackend(backend: StorageBackend): StorageBackend {
  return {
    type: backend.type,
    get: (key) => backend.get(key),
    put: (key, value) => backend.put(key, value),
    delete: (key) => backend.delete(key),
    exists: (key) => backend.exists(key),
    list: (prefix) => backend.list(prefix),
    listPage: (prefix, after, limit) => backend.listPage(prefix, after, limit),
    scan: (prefix) => backend.scan(prefix),
    transaction: (fn, options) => backend.transaction((tx) => fn(requiredTransaction(tx)), options),
    health: () => backend.health(),
    close: () => backend.close(),
  };
}
