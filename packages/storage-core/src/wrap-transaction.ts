import type { AuditingTransaction } from "./auditing-transaction.js";
import { forwardMembers } from "./forward-members.js";
import { OPTIONAL_TRANSACTION_CAPABILITIES } from "./optional-capabilities.js";
import type { OptionalTransactionCapability } from "./optional-capabilities.js";
import type { Transaction } from "./storage-backend.js";

/**
 * What a decorator changes in a transaction: any member of {@link Transaction}, including the
 * optional `putMany`, `getMany` and `appendAudit`. Members left out are forwarded to the wrapped
 * transaction. An override of an optional member is used only when the wrapped transaction
 * has that member.
 */
export type TransactionOverrides = Partial<Transaction & Pick<AuditingTransaction, "appendAudit">>;

/** A wrapped transaction: the contract, plus exactly the optional members of `T`. */
export type WrappedTransaction<T extends Transaction = Transaction> = Transaction &
  Pick<T, Extract<keyof T, OptionalTransactionCapability>>;

const REQUIRED = ["get", "put", "delete", "exists", "list", "listPage"] as const;

/**
 * A {@link Transaction} over `inner` that runs `overrides` where given and forwards every other
 * member to `inner`. Each optional capability (`putMany`, `getMany`, `appendAudit`; see
 * {@link OPTIONAL_TRANSACTION_CAPABILITIES}) is present exactly when `inner` has it, so
 * `isAuditingTransaction` and `putEntries` see through the wrapper. Overrides are called with
 * `this` bound to `overrides`.
 */
export function wrapTransaction<T extends Transaction>(inner: T, overrides: TransactionOverrides = {}): WrappedTransaction<T> {
  const wrapped = {} as WrappedTransaction<T>;
  forwardMembers(wrapped, inner, overrides, REQUIRED, false);
  forwardMembers(wrapped, inner, overrides, OPTIONAL_TRANSACTION_CAPABILITIES, true);
  return wrapped;
}
