import { connect } from "node:net";

/** How one raw exchange ended. */
export interface RawExchangeResult {
  /** The status of the first final (non-1xx) response, or 0 when none came. */
  status: number;
  /** "answered": a final response head arrived; "closed": the server closed (or reset) without one; "timeout": neither in time. */
  outcome: "answered" | "closed" | "timeout";
  /** The first bytes received (for a failure message). */
  head: string;
  /** Milliseconds from connecting to the outcome. */
  elapsedMs: number;
}

/**
 * Sends `request` (raw bytes, exactly as given) on a new TCP connection and waits for the first
 * final response head, the server closing the connection, or `timeoutMs`.
 *
 * Unlike `rawHttp` of @egide/test-server, which reads until the server closes, this stops at the
 * first complete final response head and destroys the socket: a keep-alive answer would
 * otherwise hold every exchange for the server's idle timeout, and a fuzzer sends thousands.
 * 1xx heads (`100 Continue`) are skipped, since the final answer follows them.
 */
export function rawExchange(url: string, request: Buffer, timeoutMs: number): Promise<RawExchangeResult> {
  const { hostname, port } = new URL(url);
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (outcome: RawExchangeResult["outcome"], status: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status, outcome, head: received.subarray(0, 200).toString("latin1"), elapsedMs: performance.now() - started });
    };
    const timer = setTimeout(() => finish("timeout", 0), timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      let offset = 0;
      for (;;) {
        const end = received.indexOf("\r\n\r\n", offset, "latin1");
        if (end < 0) return;
        const head = received.subarray(offset, end).toString("latin1");
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
        if (status >= 200 || status === 0) {
          finish("answered", status);
          return;
        }
        offset = end + 4;
      }
    });
    // A reset or an error before any answer is the server refusing the connection's bytes: a close.
    socket.on("error", () => finish("closed", 0));
    socket.on("close", () => finish("closed", 0));
    socket.write(request);
  });
}
