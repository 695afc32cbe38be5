import { VaultError } from "../http/vault-error.js";

/** Options of {@link HashLimiter}. */
export interface HashLimiterOptions {
  /** How many hashes run at once (default 2). */
  concurrency?: number;
  /** How many may wait for a turn (default 16); past that, requests are refused at once. */
  maxQueue?: number;
  /** Told of each hash run and each refusal (metrics). */
  onRun?: () => void;
  onRefuse?: () => void;
}

/**
 * A semaphore for password hashing: scrypt costs tens of milliseconds of CPU and 32 MiB per
 * call, and the login route is public, so at most `concurrency` run at once and at most
 * `maxQueue` wait; anyone beyond is answered 429 at once instead of queueing without bound.
 */
export class HashLimiter {
  readonly #concurrency: number;
  readonly #maxQueue: number;
  readonly #onRun: (() => void) | undefined;
  readonly #onRefuse: (() => void) | undefined;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(options: HashLimiterOptions = {}) {
    this.#concurrency = options.concurrency ?? 2;
    this.#maxQueue = options.maxQueue ?? 16;
    this.#onRun = options.onRun;
    this.#onRefuse = options.onRefuse;
  }

  /** Runs `fn` when a slot is free; a 429 when too many are already waiting. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#maxQueue) {
        this.#onRefuse?.();
        throw new VaultError(429, "too many password checks in progress; try again later");
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running += 1;
    }
    this.#onRun?.();
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter (the running count stays the same).
      if (next) next();
      else this.#running -= 1;
    }
  }
}
