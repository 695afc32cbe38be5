/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves on a later turn of the event loop. Loops that poll a fast (in-memory) backend await
 * this so they cannot starve other tasks with an endless chain of resolved promises.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
