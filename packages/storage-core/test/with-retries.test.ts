import { describe, expect, it } from "vitest";
import { StorageError, StorageErrorCode, withRetries } from "../src/index.js";

describe("withRetries", () => {
  it("retries retryable storage errors and returns the first success", async () => {
    let calls = 0;
    const result = await withRetries(async () => {
      calls++;
      if (calls < 3) throw new StorageError(StorageErrorCode.CONFLICT, "serialization failure");
      return "done";
    });
    expect(result).toBe("done");
    expect(calls).toBe(3);
  });

  it("gives up after the last attempt with the last error", async () => {
    let calls = 0;
    const failure = await withRetries(
      async () => {
        calls++;
        throw new StorageError(StorageErrorCode.CONFLICT, `attempt ${calls}`);
      },
      { attempts: 4, baseDelayMs: 1 },
    ).catch((e: unknown) => e);
    expect(calls).toBe(4);
    expect((failure as Error).message).toBe("attempt 4");
  });

  it("does not retry other errors", async () => {
    let calls = 0;
    const boom = new Error("boom");
    await expect(
      withRetries(async () => {
        calls++;
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(calls).toBe(1);
  });
});
