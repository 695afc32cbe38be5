import type Database from "better-sqlite3";
import { SqliteConnection } from "./sqlite-connection.js";

/**
 * Read-only connections to a database file, for read-only transactions: each such transaction
 * holds its own connection (and so its own WAL snapshot) for as long as its callback runs,
 * without holding up writers or plain reads.
 */
export class ReaderPool {
  readonly #idle: SqliteConnection[] = [];
  readonly #all: SqliteConnection[] = [];
  readonly #waiting: Array<(reader: SqliteConnection) => void> = [];
  #closed = false;

  constructor(
    readonly open: () => Database.Database,
    readonly max: number,
  ) {}

  /** A connection for the caller's exclusive use; give it back with {@link release}. */
  acquire(): Promise<SqliteConnection> {
    const idle = this.#idle.pop();
    if (idle) return Promise.resolve(idle);
    if (this.#all.length < this.max) {
      const reader = new SqliteConnection(this.open(), false);
      this.#all.push(reader);
      return Promise.resolve(reader);
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Returns a connection taken with {@link acquire}. */
  release(reader: SqliteConnection): void {
    if (this.#closed) {
      reader.db.close();
      return;
    }
    const next = this.#waiting.shift();
    if (next) next(reader);
    else this.#idle.push(reader);
  }

  /**
   * Closes the idle connections now and each busy one when it is released, so a read-only
   * transaction that is still running finishes normally.
   */
  close(): void {
    this.#closed = true;
    for (const reader of this.#idle) reader.db.close();
    this.#idle.length = 0;
  }
}
