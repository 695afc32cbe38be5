/**
 * Reads exact byte counts from an async stream of buffers (a file or HTTP body), holding no
 * more than one read's worth plus one incoming piece.
 */
export class ByteReader {
  readonly #source: AsyncIterator<Uint8Array>;
  #buffered: Buffer[] = [];
  #length = 0;
  #done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /** Up to `n` bytes: fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    await this.#fill(n);
    const take = Math.min(n, this.#length);
    const all = this.#buffered.length === 1 ? (this.#buffered[0] as Buffer) : Buffer.concat(this.#buffered, this.#length);
    const out = all.subarray(0, take);
    const rest = all.subarray(take);
    this.#buffered = rest.length > 0 ? [rest] : [];
    this.#length = rest.length;
    return out;
  }

  /** Whether the stream has no byte left. */
  async atEnd(): Promise<boolean> {
    await this.#fill(1);
    return this.#length === 0;
  }

  /** Stops reading the source early (its `return`, so a file handle or socket is released). */
  async close(): Promise<void> {
    if (!this.#done) {
      this.#done = true;
      await this.#source.return?.();
    }
  }

  async #fill(n: number): Promise<void> {
    while (this.#length < n && !this.#done) {
      const next = await this.#source.next();
      if (next.done) {
        this.#done = true;
        break;
      }
      const piece = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      if (piece.length === 0) continue;
      this.#buffered.push(piece);
      this.#length += piece.length;
    }
  }
}
