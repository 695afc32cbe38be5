import { ConfigError } from "./config-error.js";

/**
 * The version of the storage contract this storage-core defines: the `StorageBackend`,
 * `Transaction` and `AuditStore` interfaces and the rules the conformance suite checks. An
 * adapter's `BackendDefinition.contractVersion` says which version it was written against (as
 * vercel/ai's `specificationVersion`). It changes only when an adapter written for the previous
 * version would misbehave under this one; adding an optional capability does not change it.
 */
export const STORAGE_CONTRACT_VERSION = 1;

/** The contract versions this storage-core can run adapters of. */
export const SUPPORTED_CONTRACT_VERSIONS: readonly number[] = Object.freeze([STORAGE_CONTRACT_VERSION]);

/**
 * Refuses, with `INCOMPATIBLE_BACKEND`, an adapter built for a contract version this
 * storage-core does not support (or that declares none), naming the versions that match.
 */
export function assertContractVersion(definition: {
  readonly contractVersion?: unknown;
  readonly packageName?: unknown;
  readonly type?: unknown;
}): void {
  const version = definition.contractVersion;
  if (typeof version === "number" && SUPPORTED_CONTRACT_VERSIONS.includes(version)) return;
  const who =
    typeof definition.packageName === "string" ? definition.packageName : `the adapter for storage type ${describeValue(definition.type)}`;
  const built =
    version === undefined
      ? "declares no contractVersion (it predates versioned adapters)"
      : `is built for storage contract version ${describeValue(version)}`;
  const supported = SUPPORTED_CONTRACT_VERSIONS.join(", ");
  throw new ConfigError(
    "INCOMPATIBLE_BACKEND",
    `${who} ${built}, but this Egide supports contract version ${supported}; install a release of ${who} whose backendDefinition.contractVersion is ${supported}`,
    { option: "storage.type" },
  );
}

/**
 * A value an adapter declared, for a message: a number or a short string as written, anything
 * else by its kind. Never serialises it (a BigInt, a cycle or a throwing `toJSON` would throw).
 */
export function describeValue(value: unknown): string {
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return value.length <= 64 ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, 64))}…`;
  if (value === null) return "null";
  return `a value of type ${typeof value}`;
}
