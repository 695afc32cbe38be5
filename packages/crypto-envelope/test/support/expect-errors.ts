import { StorageError } from "@egide/storage-core";
import type { StorageErrorCode } from "@egide/storage-core";
import { expect } from "vitest";
import { SealError } from "../../src/index.js";
import type { SealErrorCode } from "../../src/index.js";

/** Runs `fn`, which must throw, and returns what it threw. */
export function thrown(fn: () => unknown): unknown {
  let result: unknown;
  try {
    result = fn();
  } catch (error) {
    return error;
  }
  throw new Error(`expected a throw, but the call returned ${Buffer.isBuffer(result) ? `0x${result.toString("hex")}` : String(result)}`);
}

/** Asserts `fn` throws a StorageError with `code` (and a message matching `message`). */
export function expectThrownStorageError(fn: () => unknown, code: StorageErrorCode, message?: RegExp): void {
  const error = thrown(fn);
  expect(StorageError.isInstance(error, code), `expected StorageError ${code}, got ${String(error)}`).toBe(true);
  if (message) expect((error as Error).message).toMatch(message);
}

/** Runs `run`, which must fail (throw or reject), and returns what it failed with. */
export async function rejection(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error("expected the operation to fail, but it succeeded");
}

/** Asserts `run` fails with a StorageError with `code`, and returns it. */
export async function expectRejectedStorageError(run: () => unknown, code: StorageErrorCode, label = ""): Promise<StorageError> {
  const error = await rejection(run);
  expect(StorageError.isInstance(error), `${label}: expected a StorageError, got ${String(error)}`).toBe(true);
  expect((error as StorageError).code, label).toBe(code);
  return error as StorageError;
}

/** Asserts `run` fails with a SealError with `code`, and returns it. */
export async function expectSealError(run: () => unknown, code: SealErrorCode): Promise<SealError> {
  const error = await rejection(run);
  expect(SealError.isInstance(error), `expected a SealError, got ${String(error)}`).toBe(true);
  expect((error as SealError).code).toBe(code);
  return error as SealError;
}
