/**
 * A FIFO lock for the one writer connection. better-sqlite3 is synchronous, so a statement
 * runs to completion once started; the queue only has to keep statements out of a transaction
 * that is open across `await`s, and keep transactions from interleaving.
 *
 * Work submitted while the queue is idle runs at once, synchronously, which keeps the common
 * autocommit `put` as cheap as the raw driver call.
 */
export class WriteQueue {
  #held = false;
  readonly #waiting: Array<() => void> = [];

  /** Whether a task holds the queue. */
  get busy(): boolean {
    return this.#held;
  }

  /** Runs a synchronous task with the queue held. */
  run<T>(task: () => T): Promise<T> {
    if (!this.#held) {
      try {
        return Promise.resolve(task());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.runAsync(async () => task());
  }

  /** Runs an asynchronous task with the queue held until it settles. */
  async runAsync<T>(task: () => Promise<T>): Promise<T> {
    await this.#acquire();
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  /** Resolves once the queue is idle (used by close()). */
  async drain(): Promise<void> {
    await this.runAsync(async () => undefined);
  }

  #acquire(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    // Hand the lock straight to the next waiter so nothing can slip in between.
    if (next) next();
    else this.#held = false;
  }
}
