export { EtcdBackend, ETCD_SCAN_PAGE_BYTES, ETCD_SCAN_PAGE_SIZE } from "./etcd-backend.js";
export type { EtcdBackendInternals } from "./etcd-backend.js";
export { EtcdAuditStore, AUDIT_PRUNE_BATCH } from "./etcd-audit-store.js";
export { LISTING_FULL_READ_AFTER_PROBES } from "./etcd-listing.js";
export { backendDefinition } from "./etcd-backend-definition.js";
export { ETCD_TYPE } from "./etcd-type.js";
export {
  parseEtcdConfig,
  resolveEtcdOptions,
  ETCD_DEFAULT_MAX_REQUEST_BYTES,
  ETCD_DEFAULT_MAX_TXN_OPS,
  ETCD_REQUEST_OVERHEAD_BYTES,
} from "./etcd-options.js";
export type { EtcdOptions, ResolvedEtcdOptions } from "./etcd-options.js";
export type { ChangeFeedTiming, EtcdChangeFeedStatus } from "./etcd-change-feed.js";
