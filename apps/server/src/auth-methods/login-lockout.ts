/** Options of {@link LoginLockout} (Vault's user lockout defaults). */
export interface LoginLockoutOptions {
  /** Failed logins after which a name is locked out (default 5). */
  threshold?: number;
  /** How long a lockout lasts, ms (default 15 minutes). */
  durationMs?: number;
  /** After how long without a failure the count starts again, ms (default 15 minutes). */
  counterResetMs?: number;
  /** The most names tracked at once; the least recently failed is forgotten first (default 10,000). */
  maxTracked?: number;
  now?: () => number;
}

interface Failures {
  count: number;
  last: number;
  lockedUntil: number;
}

/**
 * Vault's user lockout, per server instance: after `threshold` failed logins of one name within
 * `counterResetMs`, further logins of that name are refused at once (403, without checking the
 * password, so a locked name costs no hashing either) for `durationMs`; a successful login
 * clears the count. Names are tracked whether or not they exist, so the lockout itself does
 * not tell which users exist. Memory is bounded by `maxTracked`.
 */
export class LoginLockout {
  readonly #threshold: number;
  readonly #durationMs: number;
  readonly #counterResetMs: number;
  readonly #maxTracked: number;
  readonly #now: () => number;
  /** In order of last failure (a Map keeps insertion order; an update re-inserts). */
  readonly #failures = new Map<string, Failures>();

  constructor(options: LoginLockoutOptions = {}) {
    this.#threshold = options.threshold ?? 5;
    this.#durationMs = options.durationMs ?? 15 * 60_000;
    this.#counterResetMs = options.counterResetMs ?? 15 * 60_000;
    this.#maxTracked = options.maxTracked ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Whether `key` is locked out now. */
  isLocked(key: string): boolean {
    const entry = this.#failures.get(key);
    return entry !== undefined && entry.lockedUntil > this.#now();
  }

  /** Counts a failed login of `key`, locking it out at the threshold. */
  recordFailure(key: string): void {
    const now = this.#now();
    const previous = this.#failures.get(key);
    const fresh = previous === undefined || (now - previous.last > this.#counterResetMs && previous.lockedUntil <= now);
    const count = fresh || previous === undefined ? 1 : previous.count + 1;
    const entry: Failures = { count, last: now, lockedUntil: previous?.lockedUntil ?? 0 };
    if (count >= this.#threshold) {
      entry.lockedUntil = now + this.#durationMs;
      entry.count = 0;
    }
    this.#failures.delete(key);
    this.#failures.set(key, entry);
    while (this.#failures.size > this.#maxTracked) {
      const oldest = this.#failures.keys().next().value as string;
      this.#failures.delete(oldest);
    }
  }

  /** A successful login of `key`: its count starts again. */
  recordSuccess(key: string): void {
    this.#failures.delete(key);
  }
}
