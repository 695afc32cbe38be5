export type { StorageBackend, Transaction, TransactionOptions, ScanEntry, HealthStatus } from "./storage-backend.js";
export { StorageError, StorageErrorCode, InvalidKeyError, ValueTooLargeError } from "./storage-error.js";
export type { StorageErrorOptions } from "./storage-error.js";
export { validateKey, validatePrefix, validateValue, validateListPage, MAX_KEY_BYTES, DEFAULT_MAX_VALUE_BYTES } from "./validate-input.js";
export { compareKeys, prefixSuccessor } from "./key-order.js";
export { ChildCollector, childEntry } from "./child-collector.js";
export { listChildren, listStart, runSkipScan, runSkipScanAsync, NETWORK_SEEK_BATCH, IN_PROCESS_SEEK_BATCH } from "./list-children.js";
export type { KeySeek, SeekBatch } from "./list-children.js";
export type { AuditEntry, AuditRecord, AuditQuery, AuditStore } from "./audit-store.js";
export { normalizeAuditEntry, auditQueryLimit, AUDIT_QUERY_DEFAULT_LIMIT, AUDIT_QUERY_MAX_LIMIT } from "./audit-store.js";
export type { BackendDefinition, AuditingBackend } from "./backend-definition.js";
export type { AuditingTransaction } from "./auditing-transaction.js";
export { isAuditingTransaction } from "./auditing-transaction.js";
export { BackendRegistry } from "./backend-registry.js";
export type { BackendRegistryOptions, ModuleImporter } from "./backend-registry.js";
export { conventionalBackendPackage, conventionalBackendPackages, assertStorageType, assertPackageName } from "./storage-type-package.js";
export { openStorageAdapter } from "./open-storage-adapter.js";
export type { OpenStorageAdapterOptions, StorageSelection } from "./open-storage-adapter.js";
export { ConfigError } from "./config-error.js";
export { STORAGE_CONTRACT_VERSION, SUPPORTED_CONTRACT_VERSIONS, assertContractVersion } from "./contract-version.js";
export type { ConfigErrorCode } from "./config-error.js";
export { ConfigReader } from "./config-reader.js";
export { parseDuration } from "./parse-duration.js";
export { withRetries } from "./with-retries.js";
export type { RetryOptions } from "./with-retries.js";
export { TransactionGuard } from "./transaction-guard.js";
export { putEntries } from "./put-entries.js";
export { deleteTree, DELETE_TREE_PAGE } from "./delete-tree.js";
export type { DeleteTreeOptions } from "./delete-tree.js";
export { wrapStorage } from "./wrap-storage.js";
export type { StorageOverrides, WrappedStorage } from "./wrap-storage.js";
export { wrapTransaction } from "./wrap-transaction.js";
export type { TransactionOverrides, WrappedTransaction } from "./wrap-transaction.js";
export { wrapAuditStore } from "./wrap-audit-store.js";
export type { AuditStoreOverrides } from "./wrap-audit-store.js";
export {
  OPTIONAL_BACKEND_CAPABILITIES,
  OPTIONAL_TRANSACTION_CAPABILITIES,
  OPTIONAL_AUDIT_STORE_CAPABILITIES,
} from "./optional-capabilities.js";
export type { OptionalBackendCapability, OptionalTransactionCapability, OptionalAuditStoreCapability } from "./optional-capabilities.js";
export type { StorageChange, ChangeFeedListener, ChangeFeedSubscription } from "./change-feed.js";
export { ChangeFeedHub } from "./change-feed-hub.js";
export type { DemandListener } from "./change-feed-hub.js";
export { getValues } from "./get-values.js";
