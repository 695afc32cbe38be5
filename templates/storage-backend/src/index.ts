export { backendDefinition } from "./__TYPE__-backend-definition.js";
export { __Type__Backend } from "./__TYPE__-backend.js";
export { __Type__Transaction } from "./__TYPE__-transaction.js";
export { __Type__AuditStore } from "./__TYPE__-audit-store.js";
export { parse__Type__Config, resolve__Type__Options } from "./__TYPE__-options.js";
export type { __Type__Options, Resolved__Type__Options } from "./__TYPE__-options.js";
export { __CONST___TYPE } from "./__TYPE__-type.js";
