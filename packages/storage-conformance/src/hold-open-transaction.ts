import type { StorageBackend, Transaction } from "@egide/storage-core";
import { createDeferred } from "./deferred.js";
import { sleep } from "./sleep.js";

/** How long an outside read may stay queued behind an open transaction before we stop waiting. */
const PENDING_AFTER_MS = 150;

/** The error a held transaction is rolled back with, told apart from a real failure. */
class HeldRollback extends Error {
  override readonly name = "HeldRollback";
}

/**
 * Starts a transaction that does `inside`, then holds the transaction open until the returned
 * `release` is called. Resolves once `inside` is done, i.e. once there is an open transaction
 * with uncommitted writes. `done` resolves to "committed" or, with `rollBack`, "rolled back".
 */
export async function holdOpenTransaction(
  backend: StorageBackend,
  inside: (tx: Transaction) => Promise<void>,
  rollBack = false,
): Promise<{ release: () => void; done: Promise<unknown> }> {
  const entered = createDeferred();
  const gate = createDeferred();
  const marker = new HeldRollback("roll back the held transaction");
  const done = backend
    .transaction(async (tx) => {
      await inside(tx);
      entered.resolve();
      await gate.promise;
      if (rollBack) throw marker;
    })
    .then(
      () => "committed",
      (error: unknown) => {
        if (error === marker) return "rolled back";
        throw error;
      },
    );
  // If the transaction fails before signalling, surface that instead of waiting for ever.
  await Promise.race([entered.promise, done]);
  return { release: () => gate.resolve(), done };
}

/** Races `read` against a short timer: "pending" when the backend queued it behind a writer. */
export async function readOrPending<T>(read: Promise<T>): Promise<{ value: T } | "pending"> {
  return Promise.race([read.then((value) => ({ value })), sleep(PENDING_AFTER_MS).then(() => "pending" as const)]);
}
