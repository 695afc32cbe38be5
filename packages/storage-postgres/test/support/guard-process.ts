/**
 * Collects anything that escapes as an uncaught exception or unhandled rejection while a fault
 * test runs: an 'error' event without a listener on a pool, client or socket, or a late
 * rejection of a call that already timed out, would land here (and in production, crash the
 * server).
 */
export function guardProcess(): { escaped: unknown[]; dispose(): void } {
  const escaped: unknown[] = [];
  const onError = (error: unknown) => escaped.push(error);
  process.on("uncaughtException", onError);
  process.on("unhandledRejection", onError);
  return {
    escaped,
    dispose() {
      process.off("uncaughtException", onError);
      process.off("unhandledRejection", onError);
    },
  };
}
