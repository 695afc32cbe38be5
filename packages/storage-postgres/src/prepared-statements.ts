/**
 * Decides when a query text becomes a named prepared statement: after `threshold` uses (as
 * the specification's `prepare_threshold`), never when the threshold is 0 (PgBouncer in
 * transaction mode cannot keep a statement prepared on a server connection for us).
 */
export class PreparedStatements {
  readonly #uses = new Map<string, number>();
  readonly #names = new Map<string, string>();

  constructor(readonly threshold: number) {}

  /** The statement name to use for `text` this time, or undefined for an unnamed statement. */
  nameFor(text: string): string | undefined {
    if (this.threshold <= 0) return undefined;
    const named = this.#names.get(text);
    if (named) return named;
    const uses = (this.#uses.get(text) ?? 0) + 1;
    if (uses < this.threshold) {
      this.#uses.set(text, uses);
      return undefined;
    }
    this.#uses.delete(text);
    const name = `egide_${this.#names.size + 1}`;
    this.#names.set(text, name);
    return name;
  }
}
