import { StorageError } from "./storage-error.js";

/** Options of {@link withRetries}. */
export interface RetryOptions {
  /** Total attempts, the first included (default 5). */
  attempts?: number;
  /** Delay before the second attempt in ms; doubles each time, with jitter (default 5). */
  baseDelayMs?: number;
  /** Largest delay between attempts in ms (default 200). */
  maxDelayMs?: number;
  /** Which failures to try again (default: retryable StorageErrors); `attempt` counts from 1. */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  /** No new attempt starts once this many ms have passed since the first began. */
  budgetMs?: number;
}

/**
 * Runs `attempt` until it succeeds, fails with an error `shouldRetry` rejects, or the attempts
 * run out (the last error is thrown). Backends use it for serialization conflicts inside
 * `transaction()`; jittered exponential backoff keeps competing writers from colliding again.
 */
export async function withRetries<T>(attempt: (attemptNumber: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const base = options.baseDelayMs ?? 5;
  const max = options.maxDelayMs ?? 200;
  const shouldRetry = options.shouldRetry ?? ((error: unknown) => StorageError.isInstance(error) && error.retryable);
  const started = Date.now();
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n >= attempts || !shouldRetry(error, n)) throw error;
      const delay = Math.min(max, base * 2 ** (n - 1));
      if (options.budgetMs !== undefined && Date.now() - started + delay >= options.budgetMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay / 2 + Math.random() * (delay / 2)));
    }
  }
}
