export { withMetrics, StorageOperation } from "./with-metrics.js";
export type { WithMetricsOptions } from "./with-metrics.js";
export { storageMetrics, StorageMetricName, DEFAULT_DURATION_BUCKETS } from "./storage-metrics.js";
export type { StorageMetrics, ConnectionSource } from "./storage-metrics.js";
