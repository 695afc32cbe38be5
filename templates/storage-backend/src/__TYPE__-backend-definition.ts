import { type BackendDefinition, STORAGE_CONTRACT_VERSION } from "@egide/storage-core";
import { __Type__Backend } from "./__TYPE__-backend.js";
import { parse__Type__Config, type Resolved__Type__Options } from "./__TYPE__-options.js";
import { __CONST___TYPE } from "./__TYPE__-type.js";

/**
 * What the Egide server loads for `[storage] type = "__TYPE__"`: it imports this package
 * (`@egide/storage-__TYPE__`, else `egide-storage-__TYPE__`, else the `[storage] package` named in
 * the configuration), validates `[storage.__TYPE__]` with `parseConfig`, and calls `create`.
 */
export const backendDefinition: BackendDefinition<Resolved__Type__Options, __Type__Backend> = {
  /** Must equal `[storage] type`: the registry refuses a package that defines another type. */
  type: __CONST___TYPE,
  packageName: "__PACKAGE__",
  /** The storage contract this adapter is written and tested against; the registry refuses a mismatch. */
  contractVersion: STORAGE_CONTRACT_VERSION,
  parseConfig: (table) => parse__Type__Config(table),
  create: (config) => __Type__Backend.open(config),
  // findMissing: only if create() makes a new, empty database where none exists (see BackendDefinition).
};
