import type { StorageBackend } from "@egide/storage-core";
import type { ConformanceCapabilities } from "./declared-capabilities.js";

/** What a backend object offers of the capabilities the suite declares, member by member. */
export interface OfferedCapabilities {
  readonly backendGetMany: boolean;
  /** `getMany` in a read-write transaction; `false` when transactions are refused. */
  readonly transactionGetMany: boolean;
  /** `getMany` in a read-only transaction; `false` when transactions are refused. */
  readonly readOnlyTransactionGetMany: boolean;
  readonly changeFeed: boolean;
}

/**
 * Looks at `backend` (and at one read-write and one read-only transaction of it, in which it
 * calls nothing) for the optional capabilities {@link ConformanceCapabilities} names.
 */
export async function inspectCapabilities(backend: StorageBackend): Promise<OfferedCapabilities> {
  const inTransaction = async (readOnly: boolean): Promise<boolean> => {
    try {
      return await backend.transaction(async (tx) => typeof tx.getMany === "function", { readOnly });
    } catch {
      // A backend that refuses transactions offers nothing in them.
      return false;
    }
  };
  return {
    backendGetMany: typeof backend.getMany === "function",
    transactionGetMany: await inTransaction(false),
    readOnlyTransactionGetMany: await inTransaction(true),
    changeFeed: typeof backend.subscribeChanges === "function",
  };
}

/**
 * The {@link ConformanceCapabilities} `backend` offers, to pass on as the `capabilities` of a
 * decorator's conformance run: a decorator must offer what the backend it wraps offers (which
 * `describeDecoratorCapabilities` checks), so its run declares the wrapped backend's offer,
 * whatever that is today. A backend's own conformance test must not use this: it writes its
 * capabilities out, so that losing one fails its test instead of quietly running fewer cases.
 * `getMany` counts for transactions only when read-write and read-only ones both have it.
 */
export async function offeredCapabilities(backend: StorageBackend): Promise<ConformanceCapabilities> {
  const offered = await inspectCapabilities(backend);
  const transactionGetMany = offered.transactionGetMany && offered.readOnlyTransactionGetMany;
  const getMany = offered.backendGetMany ? (transactionGetMany ? true : "backend") : transactionGetMany ? "transaction" : false;
  return { getMany, changeFeed: offered.changeFeed };
}
