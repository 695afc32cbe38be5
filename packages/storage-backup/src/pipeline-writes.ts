/**
 * Feeds each batch of `batches` to `write`, reading (decrypting, parsing) the next batch while
 * the previous write is in flight, so the database and this process work at the same time.
 * Writes stay strictly in order, one at a time (a transaction's connection runs one statement
 * at a time). The first failure, of a read or a write, is thrown once nothing is in flight.
 */
export async function pipelineWrites<T>(batches: AsyncIterable<T>, write: (batch: T) => Promise<void>): Promise<void> {
  let inFlight: Promise<void> | undefined;
  try {
    for await (const batch of batches) {
      if (inFlight) await inFlight;
      inFlight = write(batch);
      // Observed below; without this a read failure would leave it unhandled.
      inFlight.catch(() => undefined);
    }
    if (inFlight) await inFlight;
  } catch (error) {
    if (inFlight) await inFlight.catch(() => undefined);
    throw error;
  }
}
