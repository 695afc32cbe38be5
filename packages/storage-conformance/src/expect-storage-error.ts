import { expect } from "vitest";
import { StorageError } from "@egide/storage-core";
import type { StorageErrorCode } from "@egide/storage-core";

/**
 * Asserts that `action` fails with a {@link StorageError} of `code`, and returns that error.
 *
 * The contract's methods return promises, so a failure must be a rejection: a synchronous throw
 * breaks callers that chain `.catch()`, and is reported as a failure here. The check uses
 * `StorageError.isInstance`, which also recognises errors of another copy of storage-core.
 */
export async function expectStorageError(action: () => unknown, code: StorageErrorCode): Promise<StorageError> {
  let pending: unknown;
  try {
    pending = action();
  } catch (error) {
    expect.fail(`expected a rejected promise with ${code}, but the call threw synchronously: ${explain(error)}`);
  }
  let failure: unknown;
  let failed = false;
  try {
    await pending;
  } catch (error) {
    failed = true;
    failure = error;
  }
  if (!failed) expect.fail(`expected a rejection with StorageError ${code}, but the call succeeded`);
  if (!StorageError.isInstance(failure, code)) {
    expect.fail(`expected StorageError ${code}, got ${explain(failure)}`);
  }
  return failure;
}

function explain(error: unknown): string {
  if (StorageError.isInstance(error)) return `StorageError ${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
