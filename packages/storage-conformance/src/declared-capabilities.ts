/**
 * The optional capabilities of the storage contract that a backend under test declares, in
 * {@link StorageConformanceOptions.capabilities}. Each one the suite has cases for is listed
 * here; the suite runs the cases of every declared capability and fails when the backend's
 * offer differs from the declaration either way.
 */
export interface ConformanceCapabilities {
  /**
   * `getMany`: `true` when the backend and its transactions (read-write and read-only) offer
   * it, `"backend"` or `"transaction"` when only one of them does. Default `false`: neither.
   */
  getMany?: boolean | "backend" | "transaction";
  /** `subscribeChanges`, the change feed. Default `false`. */
  changeFeed?: boolean;
}

/** A {@link ConformanceCapabilities} with every default filled in, member by member. */
export interface DeclaredCapabilities {
  /** `StorageBackend.getMany`. */
  readonly backendGetMany: boolean;
  /** `Transaction.getMany`, in read-write and read-only transactions. */
  readonly transactionGetMany: boolean;
  /** `StorageBackend.subscribeChanges`. */
  readonly changeFeed: boolean;
}

const KNOWN: readonly string[] = ["getMany", "changeFeed"];

/**
 * Checks and resolves a declaration at registration time: an unknown member (a typo such as
 * `changefeed`) or a value of the wrong type is a `TypeError` rather than a capability silently
 * declared absent.
 */
export function resolveDeclaredCapabilities(capabilities: ConformanceCapabilities | undefined): DeclaredCapabilities {
  if (capabilities === undefined) return { backendGetMany: false, transactionGetMany: false, changeFeed: false };
  if (typeof capabilities !== "object" || capabilities === null || Array.isArray(capabilities)) {
    throw new TypeError("describeStorageConformance: `capabilities` must be an object such as { getMany: true, changeFeed: true }");
  }
  for (const name of Object.keys(capabilities)) {
    if (!KNOWN.includes(name)) {
      throw new TypeError(`describeStorageConformance: unknown capability \`${name}\` (known: ${KNOWN.join(", ")})`);
    }
  }
  const getMany = capabilities.getMany ?? false;
  if (typeof getMany !== "boolean" && getMany !== "backend" && getMany !== "transaction") {
    throw new TypeError('describeStorageConformance: `capabilities.getMany` must be true, false, "backend" or "transaction"');
  }
  const changeFeed = capabilities.changeFeed ?? false;
  if (typeof changeFeed !== "boolean") throw new TypeError("describeStorageConformance: `capabilities.changeFeed` must be a boolean");
  return {
    backendGetMany: getMany === true || getMany === "backend",
    transactionGetMany: getMany === true || getMany === "transaction",
    changeFeed,
  };
}

/**
 * The declaration that matches `declared`, as it is written in the options (`{}` for none):
 * what a failure message tells the backend's test to declare.
 */
export function formatDeclaration(declared: DeclaredCapabilities): string {
  const members: string[] = [];
  if (declared.backendGetMany || declared.transactionGetMany) {
    const getMany =
      declared.backendGetMany && declared.transactionGetMany ? "true" : declared.backendGetMany ? '"backend"' : '"transaction"';
    members.push(`getMany: ${getMany}`);
  }
  if (declared.changeFeed) members.push("changeFeed: true");
  return members.length === 0 ? "{}" : `{ ${members.join(", ")} }`;
}
