export { describeStorageConformance } from "./describe-storage-conformance.js";
export { DEFAULT_DIFFERENTIAL_RUNS, MIN_DIFFERENTIAL_OPERATIONS } from "./conformance-options.js";
export type { StorageConformanceOptions } from "./conformance-options.js";
export { ReferenceModel } from "./reference-model.js";
export type { ReferenceModelOptions } from "./reference-model.js";
export { describeAuditStoreConformance } from "./describe-audit-store-conformance.js";
export type { AuditStoreConformanceOptions } from "./describe-audit-store-conformance.js";
