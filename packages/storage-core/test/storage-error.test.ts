import { describe, expect, it } from "vitest";
import { InvalidKeyError, StorageError, StorageErrorCode } from "../src/index.js";

describe("StorageError", () => {
  it("carries code, retryability, backend and cause", () => {
    const cause = new Error("driver said no");
    const error = new StorageError(StorageErrorCode.UNAVAILABLE, "connection lost", { backend: "postgresql", cause });
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.retryable).toBe(true);
    expect(error.backend).toBe("postgresql");
    expect(error.cause).toBe(cause);
    expect(error.message).toBe("postgresql: connection lost");
    expect(new StorageError(StorageErrorCode.CORRUPT, "bad").retryable).toBe(false);
    expect(new StorageError(StorageErrorCode.INTERNAL, "x", { retryable: true }).retryable).toBe(true);
  });

  it("is recognised across copies of the package by its registered brand", () => {
    // What another copy of storage-core would create: same brand, different class.
    const foreign = Object.assign(new Error("x"), { code: "CONFLICT" });
    Object.defineProperty(foreign, Symbol.for("@egide/storage-core/StorageError"), { value: true });
    expect(StorageError.isInstance(foreign)).toBe(true);
    expect(StorageError.isInstance(foreign, StorageErrorCode.CONFLICT)).toBe(true);
    expect(StorageError.isInstance(foreign, StorageErrorCode.SEALED)).toBe(false);
    expect(StorageError.isInstance(new Error("plain"))).toBe(false);
    expect(StorageError.isInstance(null)).toBe(false);
    expect(StorageError.isInstance(new InvalidKeyError("/x", "why"), StorageErrorCode.INVALID_KEY)).toBe(true);
  });
});
