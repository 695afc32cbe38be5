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

interface Waiter {
  client: string;
  start(): void;
  refuse(error: VaultError): void;
}

const tooMany = () => new VaultError(429, "too many password checks in progress; try again later");

/**
 * A semaphore for password hashing: scrypt costs tens of milliseconds of CPU and 32 MiB per
 * call, and the login route is public, so at most `concurrency` run at once and at most
 * `maxQueue` wait; anyone beyond is answered 429 at once instead of queueing without bound.
 *
 * The queue is shared fairly between clients (by address): when it is full, a newcomer from a
 * client holding fewer places than the busiest client takes the busiest client's newest place
 * (that request is answered 429) instead of being refused. So one client flooding the login
 * route cannot keep everyone else from logging in; behind a proxy that hides the clients'
 * addresses, the queue behaves as a plain FIFO.
 */
export class HashLimiter {
  readonly #concurrency: number;
  readonly #maxQueue: number;
  readonly #onRun: (() => void) | undefined;
  readonly #onRefuse: (() => void) | undefined;
  #running = 0;
  readonly #waiting: Waiter[] = [];
  /** Places held (running or waiting) per client; only clients holding one have an entry. */
  readonly #held = new Map<string, number>();

  constructor(options: HashLimiterOptions = {}) {
    this.#concurrency = options.concurrency ?? 2;
    this.#maxQueue = options.maxQueue ?? 16;
    this.#onRun = options.onRun;
    this.#onRefuse = options.onRefuse;
  }

  /** Runs `fn` for `client` when a slot is free; a 429 when the queue is full and `client` holds its fair share. */
  async run<T>(fn: () => Promise<T>, client = ""): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#maxQueue && !this.#shedBusiest(client)) {
        this.#onRefuse?.();
        throw tooMany();
      }
      this.#hold(client, 1);
      try {
        await new Promise<void>((start, refuse) => this.#waiting.push({ client, start, refuse }));
      } catch (error) {
        this.#hold(client, -1);
        throw error;
      }
    } else {
      this.#running += 1;
      this.#hold(client, 1);
    }
    this.#onRun?.();
    try {
      return await fn();
    } finally {
      this.#hold(client, -1);
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter (the running count stays the same).
      if (next) next.start();
      else this.#running -= 1;
    }
  }

  /** Refuses the newest waiting request of the client holding the most places, if it holds more than `client` would. */
  #shedBusiest(client: string): boolean {
    let busiest: string | undefined;
    let most = 0;
    for (const [other, count] of this.#held) {
      if (count > most) {
        busiest = other;
        most = count;
      }
    }
    if (busiest === undefined || busiest === client || most <= (this.#held.get(client) ?? 0) + 1) return false;
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const waiter = this.#waiting[i] as Waiter;
      if (waiter.client !== busiest) continue;
      this.#waiting.splice(i, 1);
      this.#onRefuse?.();
      waiter.refuse(tooMany());
      return true;
    }
    return false;
  }

  #hold(client: string, delta: number): void {
    const count = (this.#held.get(client) ?? 0) + delta;
    if (count <= 0) this.#held.delete(client);
    else this.#held.set(client, count);
  }
}
