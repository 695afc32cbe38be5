import type { AuditStore } from "./audit-store.js";
import type { ChangeFeedListener, ChangeFeedSubscription } from "./change-feed.js";
import { forwardMembers } from "./forward-members.js";
import { OPTIONAL_BACKEND_CAPABILITIES } from "./optional-capabilities.js";
import type { OptionalBackendCapability } from "./optional-capabilities.js";
import type { HealthStatus, ScanEntry, StorageBackend, Transaction, TransactionOptions } from "./storage-backend.js";
import { wrapAuditStore } from "./wrap-audit-store.js";
import type { AuditStoreOverrides } from "./wrap-audit-store.js";
import { wrapTransaction } from "./wrap-transaction.js";
import type { TransactionOverrides } from "./wrap-transaction.js";

/**
 * What a decorator changes, given to {@link wrapStorage}. Every member is optional: a member
 * left out is forwarded to the wrapped backend. Overrides are called with `this` bound to this
 * object, so a class instance works as well as an object literal.
 */
export interface StorageOverrides {
  get?(key: string): Promise<Buffer | null>;
  put?(key: string, value: Uint8Array): Promise<void>;
  delete?(key: string): Promise<void>;
  exists?(key: string): Promise<boolean>;
  list?(prefix: string): Promise<string[]>;
  listPage?(prefix: string, after: string, limit: number): Promise<string[]>;
  scan?(prefix: string): AsyncIterable<ScanEntry>;
  /**
   * Runs around the wrapped backend's transaction (timing it, checking a seal, …). `fn` takes
   * the wrapped backend's own transaction: {@link wrapStorage} turns it into the decorator's
   * transaction (with {@link StorageOverrides.wrapTransaction}) before the caller's callback
   * sees it. An override typically ends in `inner.transaction(fn, options)`.
   */
  transaction?<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>;
  health?(): Promise<HealthStatus>;
  close?(): Promise<void>;
  /** Used only when the wrapped backend has `poolStats` (it is never invented). */
  poolStats?(): unknown;
  /** Used only when the wrapped backend has `getMany`. */
  getMany?(keys: readonly string[]): Promise<(Buffer | null)[]>;
  /**
   * Used only when the wrapped backend has `subscribeChanges`. Left out, subscriptions go to
   * the wrapped backend unchanged, which is right for a decorator that keeps keys as they are.
   */
  subscribeChanges?(listener: ChangeFeedListener): ChangeFeedSubscription;
  /**
   * What the decorator changes in each transaction, given the wrapped backend's transaction and
   * the options it was opened with. Left out: transactions are forwarded unchanged (still
   * wrapped, so a leaked callback argument is the decorator's, not the backend's).
   */
  wrapTransaction?(tx: Transaction, options: TransactionOptions): TransactionOverrides;
  /** What the decorator changes in the audit store; used only when the wrapped backend has `audit`. */
  wrapAudit?(audit: AuditStore): AuditStoreOverrides;
}

/** A wrapped backend: the contract, plus exactly the optional capabilities of `B` (`audit`, `poolStats`, `getMany`, `subscribeChanges`). */
export type WrappedStorage<B extends StorageBackend = StorageBackend> = StorageBackend &
  Pick<B, Extract<keyof B, OptionalBackendCapability>>;

const REQUIRED = ["get", "put", "delete", "exists", "list", "listPage", "scan", "health", "close"] as const;

/**
 * The one way to write a storage decorator (the encrypting barrier, metrics, …): a
 * {@link StorageBackend} over `inner` in which the decorator overrides only what it changes and
 * everything else is forwarded — the contract's required members, and each optional
 * capability exactly when `inner` has it (see {@link OPTIONAL_BACKEND_CAPABILITIES} and its
 * siblings):
 *
 * - `audit`: present when `inner.audit` is; its store is wrapped with `wrapAudit` (and keeps
 *   `appendMany` exactly when the inner store has it);
 * - `poolStats()`, `getMany()` and `subscribeChanges()`: each present when `inner` has it;
 * - transactions: every transaction is wrapped with `wrapTransaction`, keeping `putMany`,
 *   `getMany` and `appendAudit` exactly when the inner transaction has them.
 *
 * An override of an optional member the inner object lacks is ignored: a decorator never
 * invents a capability. `type` is the inner backend's; `inner.audit` is read once, here.
 *
 * ```ts
 * const logged = wrapStorage(backend, {
 *   put: (key, value) => { log(key); return backend.put(key, value); },
 *   wrapTransaction: (tx) => ({ put: (key, value) => { log(key); return tx.put(key, value); } }),
 * });
 * ```
 */
export function wrapStorage<B extends StorageBackend>(inner: B, overrides: StorageOverrides = {}): WrappedStorage<B> {
  const wrapped = { type: inner.type } as Record<string, unknown>;
  forwardMembers(wrapped, inner, overrides, REQUIRED, false);
  // The function capabilities (poolStats, getMany, subscribeChanges); `audit` is an object, wrapped below.
  forwardMembers(
    wrapped,
    inner,
    overrides,
    OPTIONAL_BACKEND_CAPABILITIES.filter((name) => name !== "audit"),
    true,
  );

  const wrapTx = (tx: Transaction, options: TransactionOptions | undefined): Transaction =>
    wrapTransaction(tx, overrides.wrapTransaction ? overrides.wrapTransaction(tx, options ?? {}) : {});
  wrapped.transaction = <T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T> => {
    const run = (tx: Transaction) => fn(wrapTx(tx, options));
    return overrides.transaction ? overrides.transaction(run, options) : inner.transaction(run, options);
  };

  const audit = (inner as { audit?: unknown }).audit;
  if (typeof audit === "object" && audit !== null) {
    const store = audit as AuditStore;
    wrapped.audit = wrapAuditStore(store, overrides.wrapAudit ? overrides.wrapAudit(store) : {});
  }
  return wrapped as unknown as WrappedStorage<B>;
}
