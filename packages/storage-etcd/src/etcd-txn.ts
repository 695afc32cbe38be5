import type { IRangeResponse, IRequestOp, IResponseOp, ITxnResponse } from "etcd3";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { ETCD_TYPE } from "./etcd-type.js";

/**
 * Fits `ops` into etcd's `--max-txn-ops` (`budget`) by nesting them in sub-transactions without
 * compares (which always apply). etcd counts a level's operations as the larger of its compares
 * and its operations (`reserved` is the compares of the level `ops` go to), and gives each
 * nested transaction what its parent left (`budget` minus the parent's count): so a level holds
 * k groups, each nested with `budget - k`.
 */
export function nestOps(ops: IRequestOp[], budget: number, reserved = 0): IRequestOp[] {
  if (Math.max(ops.length, reserved) <= budget) return ops;
  if (budget - reserved < 2) throw tooManyOperations(ops.length, budget);
  // The fewest groups that fit flat; failing that, half the budget (the widest tree) and deeper.
  let groups = Math.max(2, reserved);
  while (groups < budget && groups * (budget - Math.max(reserved, groups)) < ops.length) groups++;
  if (groups >= budget || budget - Math.max(reserved, groups) < 2) groups = Math.max(2, reserved, Math.floor(budget / 2));
  const childBudget = budget - Math.max(reserved, groups);
  if (childBudget < 2) throw tooManyOperations(ops.length, budget);
  const size = Math.ceil(ops.length / groups);
  const nested: IRequestOp[] = [];
  for (let start = 0; start < ops.length; start += size) {
    nested.push({ request_txn: { success: nestOps(ops.slice(start, start + size), childBudget) } });
  }
  return nested;
}

/** Every range response of a transaction of (possibly nested) range requests, in request order. */
export function rangeResponses(responses: readonly IResponseOp[], into: IRangeResponse[] = []): IRangeResponse[] {
  for (const response of responses) {
    if (response.response_range) into.push(response.response_range);
    else if (response.response_txn) rangeResponses(response.response_txn.responses, into);
  }
  return into;
}

/** The revision a transaction's response reports. */
export function responseRevision(response: ITxnResponse): number {
  return Number(response.header.revision);
}

function tooManyOperations(count: number, budget: number): StorageError {
  return new StorageError(
    StorageErrorCode.INTERNAL,
    `a transaction of ${count} operations cannot be fitted into max_txn_ops = ${budget}; raise etcd's --max-txn-ops and max_txn_ops together`,
    { backend: ETCD_TYPE, retryable: false },
  );
}
