import { connect } from "node:net";

/**
 * Sends `request` (raw bytes: request line, headers, body, exactly as given) on a new TCP
 * connection and reads until the server closes it or `timeoutMs` passes. Returns the status of
 * the first response (0 when there was none), its body text and the whole raw answer. For
 * requests `fetch` would refuse or normalise (`..` segments, unknown methods, bad framing).
 */
export function rawHttp(
  url: string,
  request: string | Buffer,
  timeoutMs = 5000,
): Promise<{ status: number; body: string; raw: string; timedOut: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // A reset after the answer was read still counts as an answer.
      if (chunks.length === 0 && error.code !== "ECONNRESET") {
        clearTimeout(timer);
        reject(error);
      }
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString("latin1");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
      const split = raw.indexOf("\r\n\r\n");
      resolve({ status, body: split < 0 ? "" : raw.slice(split + 4), raw, timedOut });
    });
    socket.write(request);
  });
}
