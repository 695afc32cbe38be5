import { request as httpRequest } from "node:http";
import type { ClientRequest, IncomingMessage, RequestOptions as NodeRequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { CliError } from "../cli-error.js";
import { CLI_VERSION } from "../cli-version.js";
import type { ConnectionOptions } from "./connection-options.js";
import { EgideApiError } from "./egide-api-error.js";

/** Query parameters; `undefined` ones are left out. */
export type QueryParameters = Readonly<Record<string, string | number | boolean | undefined>>;

/** Options of one {@link EgideClient.request}. */
export interface ApiRequestOptions {
  query?: QueryParameters;
  /** Sent as JSON. */
  body?: unknown;
  /** The body's media type (default `application/json`; KV's PATCH needs merge-patch). */
  contentType?: string;
  /**
   * A body streamed as is (`application/octet-stream`, `bytes` long) instead of `body`. The
   * request then has no idle timeout: the server may work a long time before answering.
   */
  upload?: { stream: NodeJS.ReadableStream; bytes: number };
}

/** A successful answer: its status and parsed JSON body (null for an empty body, as with 204). */
export interface ApiResponse<T = unknown> {
  status: number;
  body: T | null;
}

/** Default time the server may stay silent before a request fails. */
const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * Encodes a Vault path for a URL: each segment percent-encoded, the slashes kept
 * (`secret/data/my app` → `secret/data/my%20app`).
 */
export function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/**
 * A small client of Egide's (Vault's) HTTP API over node:http and node:https, so that a custom
 * CA (`--ca-cert`) needs no extra dependency. Every request carries the token as
 * `X-Vault-Token`; an error status becomes an {@link EgideApiError}, an unreachable server a
 * {@link CliError} saying why. Paths are relative to `/v1/` and already encoded (see
 * {@link encodePath}).
 */
export class EgideClient {
  /** The server's base URL. */
  readonly address: string;
  readonly #token: string | undefined;
  readonly #ca: Buffer | undefined;
  readonly #timeoutMs: number;

  constructor(options: ConnectionOptions, settings: { timeoutMs?: number } = {}) {
    this.address = options.address;
    this.#token = options.token;
    this.#ca = options.ca;
    this.#timeoutMs = settings.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Whether a token was configured (commands that need one say so before asking the server). */
  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  /** `GET /v1/<path>`. */
  get<T = unknown>(path: string, query?: QueryParameters): Promise<ApiResponse<T>> {
    return this.request<T>("GET", path, query === undefined ? {} : { query });
  }

  /** Vault's `LIST`, sent as `GET /v1/<path>?list=true` (which every Vault-compatible server accepts). */
  list<T = unknown>(path: string): Promise<ApiResponse<T>> {
    return this.request<T>("GET", path, { query: { list: true } });
  }

  /** `PUT /v1/<path>` with a JSON body. */
  put<T = unknown>(path: string, body?: unknown): Promise<ApiResponse<T>> {
    return this.request<T>("PUT", path, body === undefined ? {} : { body });
  }

  /** `POST /v1/<path>` with a JSON body. */
  post<T = unknown>(path: string, body?: unknown): Promise<ApiResponse<T>> {
    return this.request<T>("POST", path, body === undefined ? {} : { body });
  }

  /** `PATCH /v1/<path>` with a JSON merge patch (`application/merge-patch+json`, as KV version 2 requires). */
  patch<T = unknown>(path: string, body: unknown): Promise<ApiResponse<T>> {
    return this.request<T>("PATCH", path, { body, contentType: "application/merge-patch+json" });
  }

  /** `DELETE /v1/<path>`. */
  delete<T = unknown>(path: string): Promise<ApiResponse<T>> {
    return this.request<T>("DELETE", path);
  }

  /** One request; resolves with the parsed body of a 2xx answer, rejects with an {@link EgideApiError} otherwise. */
  async request<T = unknown>(method: string, path: string, options: ApiRequestOptions = {}): Promise<ApiResponse<T>> {
    const response = await this.#send(method, path, options);
    const text = await readText(response, this.address);
    const status = response.statusCode ?? 0;
    const body = parseJson(text);
    if (status >= 400 || status < 200) throw apiError(status, body, this.hasToken);
    if (body === undefined) throw new CliError(`the server at ${this.address} answered ${status} with a body that is not JSON`);
    return { status, body: body as T | null };
  }

  /**
   * `GET /v1/<path>` whose 2xx body is returned unread, as a stream (for large downloads such
   * as a snapshot). An error status is read and thrown as an {@link EgideApiError}, as by
   * {@link request}. The caller must consume or destroy the stream.
   */
  async stream(path: string, query?: QueryParameters): Promise<IncomingMessage> {
    const response = await this.#send("GET", path, query === undefined ? {} : { query });
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) {
      // The idle timeout guarded the wait for the answer; a slow consumer must not trip it.
      response.socket?.setTimeout(0);
      return response;
    }
    const text = await readText(response, this.address);
    throw apiError(status, parseJson(text) ?? null, this.hasToken);
  }

  #send(method: string, path: string, options: ApiRequestOptions): Promise<IncomingMessage> {
    const url = new URL(`${this.address}/v1/${path.replace(/^\/+/, "")}`);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body), "utf8");
    const headers: Record<string, string> = { accept: "application/json", "user-agent": `egide-cli/${CLI_VERSION}` };
    if (this.#token !== undefined) headers["x-vault-token"] = this.#token;
    if (payload !== undefined) {
      headers["content-type"] = options.contentType ?? "application/json";
      headers["content-length"] = String(payload.length);
    }
    const upload = options.upload;
    if (upload !== undefined) {
      headers["content-type"] = "application/octet-stream";
      headers["content-length"] = String(upload.bytes);
    }
    const https = url.protocol === "https:";
    // No keep-alive agent: a CLI makes a few requests and must exit as soon as it is done.
    const nodeOptions: NodeRequestOptions & { ca?: Buffer } = { method, headers, agent: false };
    if (https && this.#ca !== undefined) nodeOptions.ca = this.#ca;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let request: ClientRequest;
      try {
        request = (https ? httpsRequest : httpRequest)(url, nodeOptions, resolve);
      } catch (error) {
        // Invalid header characters (a token with a newline) fail here; the message names
        // the header, never its value.
        reject(new CliError(`cannot send the request: ${(error as Error).message}`, { cause: error }));
        return;
      }
      if (upload === undefined) {
        request.setTimeout(this.#timeoutMs, () => {
          request.destroy(Object.assign(new Error("timeout"), { code: "EGIDE_TIMEOUT" }));
        });
      }
      request.on("error", (error) => reject(connectionError(error, this.address, this.#timeoutMs)));
      if (upload === undefined) {
        request.end(payload);
        return;
      }
      upload.stream.on("error", (error) => request.destroy(error));
      upload.stream.pipe(request);
    });
  }
}

/** Reads a whole response body as UTF-8. */
function readText(response: IncomingMessage, address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    response.on("error", (error) => reject(connectionError(error, address, 0)));
    response.on("aborted", () => reject(new CliError(`the connection to ${address} closed before the answer was complete`)));
  });
}

/** The parsed JSON, null for an empty body, undefined when it is not JSON. */
function parseJson(text: string): unknown {
  if (text.trim() === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function apiError(status: number, body: unknown, hasToken: boolean): EgideApiError {
  const errors = (body as { errors?: unknown } | null | undefined)?.errors;
  const list = Array.isArray(errors) ? errors.filter((e): e is string => typeof e === "string") : [];
  // A 403 without any token is almost always a forgotten EGIDE_TOKEN: say so.
  if (status === 403 && !hasToken) list.push("no token was given (set EGIDE_TOKEN or pass --token)");
  return new EgideApiError(status, list, body ?? null);
}

/** Certificate verification failures, which a `--ca-cert` fixes. */
const UNTRUSTED_CERTIFICATE = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
]);

/** One line saying why the server could not be reached. */
function connectionError(error: unknown, address: string, timeoutMs: number): CliError {
  const code = (error as NodeJS.ErrnoException)?.code ?? "";
  let reason: string;
  if (code === "ECONNREFUSED") reason = "connection refused";
  else if (code === "ENOTFOUND" || code === "EAI_AGAIN") reason = "host not found";
  else if (code === "EHOSTUNREACH" || code === "ENETUNREACH") reason = "host unreachable";
  else if (code === "ECONNRESET") reason = "connection reset by the server (does it expect https?)";
  else if (code === "EGIDE_TIMEOUT" || code === "ETIMEDOUT")
    reason = `no answer within ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`}`;
  else if (UNTRUSTED_CERTIFICATE.has(code))
    reason = `its TLS certificate is not trusted (${code}); pass its CA with --ca-cert or EGIDE_CACERT`;
  else if (code === "ERR_TLS_CERT_ALTNAME_INVALID") reason = "its TLS certificate does not name this host";
  else if (code === "CERT_HAS_EXPIRED") reason = "its TLS certificate has expired";
  else if (code.startsWith("ERR_SSL_") || code === "EPROTO") reason = "TLS handshake failed (is it an http:// server?)";
  else reason = (error as Error)?.message ?? String(error);
  return new CliError(`cannot reach the server at ${address}: ${reason}`, { cause: error });
}
