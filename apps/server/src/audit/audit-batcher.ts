import { isAuditingTransaction } from "@egide/storage-core";
import type { AuditEntry, AuditingBackend } from "@egide/storage-core";

interface Pending {
  entry: AuditEntry;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for the audit rows of requests that change nothing (reads, refusals): while
 * one commit is in flight, the rows of concurrent requests queue up and the next commit writes
 * them all in one transaction. Each request still waits until its own row is committed, so the
 * log stays fail-closed; what is saved is a commit per request (and, on SQLite, the reader
 * connection's page cache, which every commit of the writer invalidates). The first row waits
 * one turn of the event loop (`setImmediate`) so that rows of requests answered in the same
 * turn share its commit; a lone row is then appended on its own. When a batch fails, its rows
 * are retried one by one, so one bad row cannot fail the requests of the others.
 */
export class AuditBatcher {
  readonly #backend: AuditingBackend;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #flushing = false;

  constructor(backend: AuditingBackend, options: { maxBatch?: number } = {}) {
    this.#backend = backend;
    this.#maxBatch = options.maxBatch ?? 64;
  }

  /** Resolves once `entry` is committed; rejects when it could not be. */
  append(entry: AuditEntry): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ entry, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        if (batch.length === 1) {
          await this.#one(batch[0] as Pending);
          continue;
        }
        try {
          const entries = batch.map((item) => item.entry);
          const audit = this.#backend.audit;
          if (audit.appendMany) {
            // One commit, and on PostgreSQL one statement, for the whole batch.
            await audit.appendMany(entries);
          } else {
            await this.#backend.transaction(async (tx) => {
              if (!isAuditingTransaction(tx)) throw new Error("the storage cannot write audit rows inside a transaction");
              for (const entry of entries) await tx.appendAudit(entry);
            });
          }
          for (const item of batch) item.resolve();
        } catch {
          for (const item of batch) await this.#one(item);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #one(item: Pending): Promise<void> {
    try {
      await this.#backend.audit.append(item.entry);
      item.resolve();
    } catch (error) {
      item.reject(error);
    }
  }
}
