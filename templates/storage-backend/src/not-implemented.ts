import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { __CONST___TYPE } from "./__TYPE__-type.js";

/**
 * What every member still to be written throws, so that each failure of the conformance suite
 * names the member to write next. Delete this file once nothing imports it.
 */
export class NotImplementedError extends StorageError {
  /** The member still to be written, such as `__Type__Backend.get()`. */
  readonly member: string;

  constructor(member: string) {
    super(
      StorageErrorCode.INTERNAL,
      `TODO: write ${member}: not implemented yet (the contract: docs/adding-a-backend.md in the Egide repository, and the JSDoc of @egide/storage-core)`,
      { backend: __CONST___TYPE, retryable: false },
    );
    this.name = "NotImplementedError";
    this.member = member;
  }
}

/**
 * The error of a member still to be written: `throw notImplemented("__Type__Backend.get()", key)`.
 * `_inputs` (what the member received) is ignored: passing it keeps the stub's parameters in use
 * until the member is written.
 */
export function notImplemented(member: string, ..._inputs: unknown[]): NotImplementedError {
  return new NotImplementedError(member);
}
