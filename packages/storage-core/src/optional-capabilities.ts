/**
 * The optional members of the storage contract, beyond what {@link StorageBackend},
 * {@link Transaction} and {@link AuditStore} require. A caller tests for them before use
 * (`isAuditingTransaction`, `putEntries`, `typeof backend.poolStats === "function"`), so a
 * decorator must offer exactly those its wrapped backend offers: dropping one silently loses a
 * capability (a slower restore, audit rows outside the transaction), and inventing one makes a
 * caller take a path the backend cannot serve. {@link wrapStorage} forwards them by this list,
 * and the conformance suite's decorator check compares them by it.
 */

/**
 * Optional members of a backend: `audit`, the audit store of an {@link AuditingBackend};
 * `poolStats()`, the connection counts of a pooled backend (PostgreSQL); `getMany()`, several
 * reads in one round trip; and `subscribeChanges()`, the change feed.
 */
export const OPTIONAL_BACKEND_CAPABILITIES = ["audit", "poolStats", "getMany", "subscribeChanges"] as const;

/**
 * Optional members of a transaction: `putMany` (bulk puts), `getMany` (several reads in one
 * round trip) and `appendAudit` (an {@link AuditingTransaction}).
 */
export const OPTIONAL_TRANSACTION_CAPABILITIES = ["putMany", "getMany", "appendAudit"] as const;

/** Optional members of an audit store: `appendMany` (several rows in one commit). */
export const OPTIONAL_AUDIT_STORE_CAPABILITIES = ["appendMany"] as const;

/** One of {@link OPTIONAL_BACKEND_CAPABILITIES}. */
export type OptionalBackendCapability = (typeof OPTIONAL_BACKEND_CAPABILITIES)[number];
/** One of {@link OPTIONAL_TRANSACTION_CAPABILITIES}. */
export type OptionalTransactionCapability = (typeof OPTIONAL_TRANSACTION_CAPABILITIES)[number];
/** One of {@link OPTIONAL_AUDIT_STORE_CAPABILITIES}. */
export type OptionalAuditStoreCapability = (typeof OPTIONAL_AUDIT_STORE_CAPABILITIES)[number];
