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

  it("starts no attempt past its time budget", async () => {
    let calls = 0;
    const started = Date.now();
    await expect(
      withRetries(
        async () => {
          calls++;
          await new Promise((resolve) => setTimeout(resolve, 40));
          throw new StorageError(StorageErrorCode.UNAVAILABLE, "down");
        },
        { attempts: 100, baseDelayMs: 1, budgetMs: 100 },
      ),
    ).rejects.toThrow("down");
    expect(calls).toBeLessThanOrEqual(3);
    expect(Date.now() - started).toBeLessThan(200);
  });

  it("passes the attempt number to shouldRetry", async () => {
    const seen: number[] = [];
    await withRetries(
      async () => {
        throw new StorageError(StorageErrorCode.CONFLICT, "x");
      },
      {
        attempts: 5,
        baseDelayMs: 1,
        shouldRetry: (_, attempt) => {
          seen.push(attempt);
          return attempt < 3;
        },
      },
    ).catch(() => undefined);
    expect(seen).toEqual([1, 2, 3]);
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
