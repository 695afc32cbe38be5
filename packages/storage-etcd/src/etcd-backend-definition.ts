import { type BackendDefinition, STORAGE_CONTRACT_VERSION } from "@egide/storage-core";
import { EtcdBackend } from "./etcd-backend.js";
import { type ResolvedEtcdOptions, parseEtcdConfig } from "./etcd-options.js";
import { ETCD_TYPE } from "./etcd-type.js";

/** What the server's backend registry loads for `[storage] type = "etcd"`. */
export const backendDefinition: BackendDefinition<ResolvedEtcdOptions, EtcdBackend> = {
  type: ETCD_TYPE,
  packageName: "@egide/storage-etcd",
  contractVersion: STORAGE_CONTRACT_VERSION,
  parseConfig: (table, env) => parseEtcdConfig(table, env),
  // The options are resolved already (TLS files read, the password hidden in them): opened as they are.
  create: (config) => EtcdBackend.openResolved(config),
};
