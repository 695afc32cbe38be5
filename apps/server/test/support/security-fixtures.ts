/**
 * Helpers for the security regression tests (`e2e-security-findings.test.ts`): raw HTTP
 * requests with exact bytes, keep-alive connections driven by hand, and the policy, token and
 * audit-log calls those tests repeat.
 */
import { connect, type Socket } from "node:net";
import { expect } from "vitest";
import { call, type JsonBody, rawHttp, type TestServer } from "@egide/test-server";

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A parsed answer: status, lower-cased headers, the body parsed as JSON (or its text, or null). */
export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: JsonBody;
  raw: string;
  timedOut: boolean;
}

/** Options of {@link rawRequest} and {@link rawCall}. */
export interface RawOptions {
  token?: string;
  /** A body: an object is sent as JSON, a string or Buffer as is; Content-Length is added. */
  body?: unknown;
  /** Extra header lines, exactly as written ("Content-Type: text/plain"). */
  headers?: string[];
  /** The Connection header (default `close`). */
  connection?: "close" | "keep-alive";
}

/** The bytes of an HTTP/1.1 request, exactly as given (no Content-Type unless passed in `headers`). */
export function rawRequest(method: string, target: string, options: RawOptions = {}): Buffer {
  const lines = [
    `${method} ${target} HTTP/1.1`,
    "Host: 127.0.0.1",
    `Connection: ${options.connection ?? "close"}`,
    ...(options.headers ?? []),
  ];
  if (options.token) lines.push(`X-Vault-Token: ${options.token}`);
  let body: Buffer = Buffer.alloc(0);
  if (options.body !== undefined) {
    body = Buffer.isBuffer(options.body)
      ? options.body
      : Buffer.from(typeof options.body === "string" ? options.body : JSON.stringify(options.body), "utf8");
    lines.push(`Content-Length: ${body.length}`);
  }
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), body]);
}

/** Splits a raw HTTP answer (one response) into status, headers and parsed body. */
export function parseRawAnswer(raw: string): Omit<RawReply, "raw" | "timedOut"> {
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
  const split = raw.indexOf("\r\n\r\n");
  const headers: Record<string, string> = {};
  for (const line of (split < 0 ? raw : raw.slice(0, split)).split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const text = split < 0 ? "" : raw.slice(split + 4);
  let body: unknown = null;
  if (text !== "") {
    try {
      body = JSON.parse(Buffer.from(text, "latin1").toString("utf8"));
    } catch {
      body = text;
    }
  }
  return { status, headers, body };
}

/** One request over a new connection with exact bytes (for LIST, odd encodings, missing Content-Type). */
export async function rawCall(url: string, method: string, target: string, options: RawOptions = {}, timeoutMs = 5000): Promise<RawReply> {
  const answer = await rawHttp(url, rawRequest(method, target, options), timeoutMs);
  return { ...parseRawAnswer(answer.raw), raw: answer.raw, timedOut: answer.timedOut };
}

/** Writes an ACL policy as root (204 expected). */
export async function putPolicy(server: TestServer, name: string, policy: string): Promise<void> {
  const reply = await call(server.url, "PUT", `/v1/sys/policies/acl/${name}`, { token: server.rootToken, body: { policy } });
  expect(reply.status, `policy ${name}: ${JSON.stringify(reply.body)}`).toBe(204);
}

/** Creates a token with `policies` (by root unless `creator` is given); returns it and its accessor. */
export async function tokenWith(
  server: TestServer,
  policies: string[],
  extra: Record<string, unknown> = {},
  creator = server.rootToken,
): Promise<{ token: string; accessor: string }> {
  const reply = await call(server.url, "POST", "/v1/auth/token/create", { token: creator, body: { policies, ...extra } });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return { token: reply.body.auth.client_token as string, accessor: reply.body.auth.accessor as string };
}

/** An audit row as `GET /v1/sys/audit-log` answers it. */
export interface AuditRow {
  id: number;
  timestamp: string;
  operation: string;
  path: string;
  source_ip: string | null;
  user_id: string | null;
  request_id: string;
  success: boolean;
  error_message: string | null;
  metadata: { status?: number; method?: string; [key: string]: unknown };
}

/** The audit rows matching `filter` (`path_prefix`, `request_id`, `since`, …), read with the root token. */
export async function auditRows(server: TestServer, filter: Record<string, string>): Promise<AuditRow[]> {
  const query = new URLSearchParams({ limit: "10000", ...filter }).toString();
  const reply = await call(server.url, "GET", `/v1/sys/audit-log?${query}`, { token: server.rootToken });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body.data.entries as AuditRow[];
}

/** Runs `fn` and measures it. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/**
 * A TCP connection to the server driven by hand: requests are written when asked, answers are
 * read one at a time (Content-Length framing only), and the moment the server closes it is
 * recorded.
 */
export class RawConnection {
  readonly socket: Socket;
  /** Resolves when the socket closes, with the time it took since it was opened (ms). */
  readonly closed: Promise<number>;
  #buffer = Buffer.alloc(0);
  #waiter: (() => void) | undefined;
  #isClosed = false;
  readonly #openedAt = performance.now();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiter?.();
    });
    socket.on("error", () => undefined);
    this.closed = new Promise((resolve) => {
      socket.on("close", () => {
        this.#isClosed = true;
        this.#waiter?.();
        resolve(performance.now() - this.#openedAt);
      });
    });
  }

  /** Opens a connection and waits until it is established. */
  static open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) });
      socket.once("connect", () => resolve(new RawConnection(socket)));
      socket.once("error", reject);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Everything received and not yet consumed by {@link read}. */
  get received(): Buffer {
    return this.#buffer;
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Reads one answer (head and Content-Length body); rejects when the socket closes first or after `timeoutMs`. */
  async read(timeoutMs = 5000): Promise<{ status: number; headers: Record<string, string>; body: JsonBody }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const split = this.#buffer.indexOf("\r\n\r\n");
      if (split >= 0) {
        const head = parseRawAnswer(this.#buffer.subarray(0, split + 4).toString("latin1"));
        const length = Number(head.headers["content-length"] ?? 0);
        if (head.headers["transfer-encoding"] !== undefined) throw new Error("chunked answers are not supported by RawConnection");
        if (this.#buffer.length >= split + 4 + length) {
          const text = this.#buffer.subarray(split + 4, split + 4 + length).toString("utf8");
          this.#buffer = this.#buffer.subarray(split + 4 + length);
          let body: unknown = null;
          try {
            body = text === "" ? null : JSON.parse(text);
          } catch {
            body = text;
          }
          return { status: head.status, headers: head.headers, body };
        }
      }
      if (this.#isClosed) throw new Error(`the connection closed before a whole answer arrived (${this.#buffer.length} bytes)`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error("no answer in time");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          this.#waiter = undefined;
          resolve();
        };
      });
    }
  }

  /** Sends a request and reads its answer. */
  async request(bytes: string | Buffer, timeoutMs = 5000): Promise<{ status: number; headers: Record<string, string>; body: JsonBody }> {
    this.write(bytes);
    return this.read(timeoutMs);
  }

  /** Waits for the server to close the connection, at most `timeoutMs`; returns the ms since opening, or null. */
  async waitClosed(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([this.closed, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)))]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
