import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/** TLS material for a request to an `https` member. */
export interface HttpTls {
  /** PEM of the CA that signed the member's certificate. */
  ca: Buffer;
  /** PEM client certificate and key, for members that require client certificates. */
  cert?: Buffer;
  key?: Buffer;
}

/**
 * One HTTP request to an etcd member's JSON endpoints (`/health`, the v3 gRPC gateway), with a
 * deadline; resolves with the status and the parsed body (undefined when it is not JSON).
 */
export function httpJson(
  url: string,
  options: { method?: "GET" | "POST"; body?: unknown; tls?: HttpTls; timeoutMs?: number } = {},
): Promise<{ status: number; body: unknown }> {
  const target = new URL(url);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: options.method ?? (payload === undefined ? "GET" : "POST"),
        headers: payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        timeout: options.timeoutMs ?? 2000,
        ...(options.tls ? { ca: options.tls.ca, cert: options.tls.cert, key: options.tls.key } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url} in time`)));
    req.on("error", reject);
    req.end(payload);
  });
}
